import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { eximBinary, freePort, smtpGreets, tempDir, waitFor } from './env.js';

/**
 * A throw-away Exim 4 (Debian's exim4-daemon-light binary, unpacked by scripts/peers.sh
 * because the exim4 packages cannot be installed next to postfix) on 127.0.0.1:<free port>, run
 * in the foreground as root. Debian's binary honours `-C` with root privilege only for files
 * listed in /etc/exim4/trusted_configs (TRUSTED_CONFIG_LIST; otherwise it drops to Debian-exim
 * and cannot run a pipe as another user): we add our config there and take it out at stop, as
 * test/helpers/postfix.ts does with alternate_config_directories. Spool and logs are written by
 * the Debian-exim user, so they belong to it.
 */
export interface EximInstance {
  dir: string;
  port: number;
  /** Everything in the main log so far. */
  log(): string;
  /**
   * `exim -qff`: a queue run now, deferred and frozen mail included; resolves when it is done.
   * Asynchronous: the pipe it runs may POST to a Postroom in this very process.
   */
  flush(): Promise<void>;
  /** Messages in the queue (exim -bp). */
  queue(): string;
  stop(): Promise<void>;
}

export interface EximOptions {
  /** Routers placed first in `begin routers` (e.g. the README's postroom_lists). */
  routers: string;
  /** Transports (e.g. the README's postroom_pipe). */
  transports: string;
  /** Domains we accept mail for: the pipe's domain and the relay's. */
  domains: string[];
  /** Mail for this domain is relayed to 127.0.0.1:relayPort. */
  relayDomain: string;
  relayPort: number;
  /** Listen here (default: a free port). */
  port?: number;
}

const TRUSTED = '/etc/exim4/trusted_configs';

/**
 * Add or take out one line of the trusted config list (rewritten whole, then renamed). Lines
 * naming files that are gone (a run killed before its cleanup) go too.
 */
function trust(conf: string, on: boolean): void {
  mkdirSync(path.dirname(TRUSTED), { recursive: true });
  const lines = existsSync(TRUSTED) ? readFileSync(TRUSTED, 'utf8').split('\n') : [];
  const left = lines.filter((l) => l && l !== conf && existsSync(l));
  if (on) left.push(conf);
  const tmp = `${TRUSTED}.${process.pid}`;
  writeFileSync(tmp, left.map((l) => `${l}\n`).join(''), { mode: 0o644 });
  renameSync(tmp, TRUSTED);
}

/** Start Exim; resolves once it answers on its port. */
export async function startExim(o: EximOptions): Promise<EximInstance> {
  const bin = eximBinary();
  const tmp = tempDir('exim-');
  const dir = tmp.dir;
  // Debian-exim writes spool and logs; the pipe's user (nobody) walks through to its INI file.
  chmodSync(dir, 0o755);
  const uid = Number(execFileSync('id', ['-u', 'Debian-exim'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'Debian-exim'], { encoding: 'utf8' }).trim());
  for (const d of ['spool', 'log']) {
    mkdirSync(path.join(dir, d));
    chownSync(path.join(dir, d), uid, gid);
  }
  const port = o.port ?? (await freePort());
  const conf = path.join(dir, 'exim.conf');
  writeFileSync(
    conf,
    [
      `exim_path = ${bin}`,
      `spool_directory = ${dir}/spool`,
      `log_file_path = ${dir}/log/%slog`,
      `pid_file_path = ${dir}/exim.pid`,
      'primary_hostname = mx.test.local',
      'qualify_domain = test.local',
      'local_interfaces = 127.0.0.1',
      `daemon_smtp_ports = ${port}`,
      // No DNS, ident or TLS: the peers are all on 127.0.0.1.
      'host_lookup =',
      'rfc1413_hosts =',
      'tls_advertise_hosts =',
      'keep_environment =',
      `domainlist relay_to_domains = ${o.domains.join(' : ')}`,
      'acl_smtp_rcpt = acl_check_rcpt',
      '',
      'begin acl',
      'acl_check_rcpt:',
      '  accept hosts = 127.0.0.1',
      '         domains = +relay_to_domains',
      '  deny   message = relay not permitted',
      '',
      'begin routers',
      o.routers.trim(),
      '',
      'to_relay:',
      '  driver = manualroute',
      `  domains = ${o.relayDomain}`,
      '  route_list = * 127.0.0.1',
      '  transport = to_relay',
      // 127.0.0.1 is this host too; the relay listens on another port.
      '  self = send',
      '',
      'begin transports',
      o.transports.trim(),
      '',
      'to_relay:',
      '  driver = smtp',
      `  port = ${o.relayPort}`,
      '  allow_localhost',
      '',
      'begin retry',
      // Deferred mail waits for the test's queue run (-qff), not for a timer.
      '* * F,1d,1d',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  trust(conf, true);
  const daemon: ChildProcess = spawn(bin, ['-C', conf, '-bdf', '-oX', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  daemon.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
  const read = (name: string) => {
    try {
      return readFileSync(path.join(dir, 'log', name), 'utf8');
    } catch {
      return '';
    }
  };
  const stop = async () => {
    try {
      if (daemon.exitCode === null && daemon.signalCode === null) {
        daemon.kill('SIGTERM');
        await exited;
      }
    } finally {
      trust(conf, false);
      tmp.cleanup();
    }
  };
  try {
    await waitFor(
      () =>
        daemon.exitCode !== null
          ? Promise.reject(new Error(`exim exited ${daemon.exitCode}: ${stderr}${read('paniclog')}${read('mainlog')}`))
          : smtpGreets(port),
      'exim greeting with 220',
      60_000,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  const run = (args: string[]) => execFileSync(bin, ['-C', conf, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return {
    dir,
    port,
    log: () => read('mainlog'),
    flush: () =>
      new Promise<void>((resolve, reject) =>
        execFile(bin, ['-C', conf, '-qff'], (err, _out, errOut) => (err ? reject(new Error(`exim -qff: ${err.message} ${errOut}`)) : resolve())),
      ),
    queue: () => run(['-bp']),
    stop,
  };
}
