import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, smtpGreets, tempDir, waitFor } from './env.js';

/**
 * A throw-away Postfix on 127.0.0.1:<free port> (the recipe of ../shared/peers/postfix-instance.sh),
 * run as root like any Postfix. Mail for `pipeDomain` goes to the `postroom` pipe transport
 * (argv given, run as `nobody`); mail for `relayDomain` is relayed to 127.0.0.1:relayPort.
 * Postfix refuses `postfix -c DIR` unless the machine's own /etc/postfix/main.cf lists DIR in
 * alternate_config_directories: we add ours, and the machine must be left as it was found. So
 * the entry goes again at stop, at exit and on SIGINT/SIGTERM/SIGHUP (with the instance); and
 * each start first sweeps the entries (and daemons) of runs that died without that (SIGKILL):
 * ours are named by their directory's `owner` file, whose process is gone.
 */
export interface PostfixInstance {
  dir: string;
  port: number;
  /** Everything in the mail log so far. */
  log(): string;
  /** `postqueue -f`: try the deferred mail now. */
  flush(): void;
  /** Messages in the queue (postqueue -p). */
  queue(): string;
  stop(): Promise<void>;
}

export interface PostfixOptions {
  pipeDomain: string;
  relayDomain: string;
  relayPort: number;
  /** The master.cf entry of the `postroom` pipe transport (service line and its options). */
  pipeEntry: string;
  /** Extra main.cf lines. */
  extra?: string[];
  /** Listen here (default: a free port). */
  port?: number;
}

const MAIN_CF = '/etc/postfix/main.cf';
const PARAM = 'alternate_config_directories';
/** Our instances' etc directories: `<tmp>/postfix-XXXXXX/etc` (tempDir's prefix below). */
const OURS = new RegExp(`^${path.join(os.tmpdir(), 'postfix-').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[^/]+/etc$`);

function postconfList(): string[] {
  return execFileSync('postconf', ['-h', PARAM], { encoding: 'utf8' }).split(/[\s,]+/).filter(Boolean);
}

/**
 * Write the list back; none left: the parameter goes from main.cf altogether (postconf -X), as
 * before the first instance, rather than staying as an empty `alternate_config_directories =`.
 */
function setList(dirs: string[]): void {
  if (dirs.length) execFileSync('postconf', ['-e', `${PARAM} = ${dirs.join(' ')}`]);
  else if (new RegExp(`^${PARAM}\\s*=`, 'm').test(readFileSync(MAIN_CF, 'utf8'))) execFileSync('postconf', ['-X', PARAM]);
}

/** Take our directories out of alternate_config_directories again. */
function forget(...etcs: string[]): void {
  const list = postconfList();
  const left = list.filter((d) => !etcs.includes(d));
  if (left.length !== list.length) setList(left);
}

/** Instances this process started and has not stopped yet. */
const live = new Map<string, { etc: string; cleanup(): void }>();

/** Stop an instance and forget it, synchronously (so it can run in an exit or signal handler). */
function teardown(etc: string, removeDir: () => void): void {
  try {
    execFileSync('postfix', ['-c', etc, 'stop'], { stdio: 'ignore' });
  } catch {
    // Not running (it failed to start, or was stopped already): nothing to stop.
  } finally {
    forget(etc);
    removeDir();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Entries a killed run left: of ours, those whose directory is gone, or whose `owner` process
 * is gone (its daemon, if still up, is stopped and its directory removed). An entry without an
 * owner file is left alone while its directory exists: another checkout's run may be using it.
 */
export function sweepStalePostfix(): void {
  const stale: string[] = [];
  for (const etc of postconfList()) {
    if (!OURS.test(etc) || live.has(etc)) continue;
    const dir = path.dirname(etc);
    if (!existsSync(dir)) {
      stale.push(etc);
      continue;
    }
    let owner: number;
    try {
      owner = Number(readFileSync(path.join(dir, 'owner'), 'utf8'));
    } catch {
      continue;
    }
    if (!owner || alive(owner)) continue;
    try {
      execFileSync('postfix', ['-c', etc, 'stop'], { stdio: 'ignore' });
    } catch {
      // Its daemon died with it.
    }
    rmSync(dir, { recursive: true, force: true });
    stale.push(etc);
  }
  if (stale.length) forget(...stale);
}

function teardownAll(): void {
  for (const i of [...live.values()]) i.cleanup();
}
let handlersInstalled = false;
function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', teardownAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      teardownAll();
      // Then die of the signal as we would have without this handler.
      process.kill(process.pid, sig);
    });
  }
}

/** Start Postfix; resolves once it answers on its port. */
export async function startPostfix(o: PostfixOptions): Promise<PostfixInstance> {
  const tmp = tempDir('postfix-');
  const dir = tmp.dir;
  // Postfix's own users (postfix, nobody for the pipe) walk into the queue below this directory.
  chmodSync(dir, 0o755);
  const etc = path.join(dir, 'etc');
  for (const d of ['etc', 'queue', 'data']) mkdirSync(path.join(dir, d), { recursive: true });
  const uid = Number(execFileSync('id', ['-u', 'postfix'], { encoding: 'utf8' }).trim());
  chownSync(path.join(dir, 'data'), uid, -1);
  const port = o.port ?? (await freePort());
  const maillog = path.join(dir, 'maillog');
  sweepStalePostfix();
  installHandlers();
  // Who owns this instance, for the sweep of a later run should this process be killed outright.
  writeFileSync(path.join(dir, 'owner'), String(process.pid));
  let done = false;
  const cleanup = () => {
    if (done) return;
    done = true;
    live.delete(etc);
    teardown(etc, tmp.cleanup);
  };
  live.set(etc, { etc, cleanup });
  const alternates = postconfList();
  if (!alternates.includes(etc)) setList([...alternates, etc]);
  writeFileSync(
    path.join(etc, 'main.cf'),
    [
      'compatibility_level = 3.6',
      `queue_directory = ${path.join(dir, 'queue')}`,
      `data_directory = ${path.join(dir, 'data')}`,
      'mail_owner = postfix',
      'setgid_group = postdrop',
      'myhostname = mx.test.local',
      'mydomain = test.local',
      'myorigin = test.local',
      'inet_interfaces = 127.0.0.1',
      'inet_protocols = ipv4',
      'mydestination =',
      'local_recipient_maps =',
      `relay_domains = ${o.pipeDomain} ${o.relayDomain}`,
      `transport_maps = inline:{ ${o.pipeDomain}=postroom, ${o.relayDomain}=smtp:[127.0.0.1]:${o.relayPort} }`,
      'mynetworks = 127.0.0.0/8',
      'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination',
      `maillog_file = ${maillog}`,
      `maillog_file_prefixes = ${dir}`,
      // One recipient per pipe run: ${original_recipient} is then that recipient.
      'postroom_destination_recipient_limit = 1',
      // Retry deferred mail soon (tests flush by hand anyway).
      'minimal_backoff_time = 1s',
      'maximal_backoff_time = 2s',
      'queue_run_delay = 1s',
      'alias_maps =',
      'alias_database =',
      'shlib_directory = /usr/lib/postfix',
      'daemon_directory = /usr/lib/postfix/sbin',
      'meta_directory = /etc/postfix',
      ...(o.extra ?? []),
      '',
    ].join('\n'),
  );
  const master = readFileSync('/etc/postfix/master.cf', 'utf8').replace(/^smtp( +)inet/m, `127.0.0.1:${port}$1inet`);
  writeFileSync(path.join(etc, 'master.cf'), `${master}\n${o.pipeEntry.trim()}\n`);
  try {
    execFileSync('postfix', ['-c', etc, 'start'], { encoding: 'utf8', stdio: 'pipe' });
  } catch (e) {
    cleanup();
    throw new Error(`postfix start failed: ${(e as { stderr?: string }).stderr ?? e}`);
  }
  try {
    await waitFor(() => smtpGreets(port), 'postfix greeting with 220', 90_000);
  } catch (e) {
    cleanup();
    throw e;
  }
  const read = () => {
    try {
      return readFileSync(maillog, 'utf8');
    } catch {
      return '';
    }
  };
  return {
    dir,
    port,
    log: read,
    flush: () => execFileSync('postqueue', ['-c', etc, '-f'], { stdio: 'ignore' }),
    queue: () => execFileSync('postqueue', ['-c', etc, '-p'], { encoding: 'utf8' }),
    async stop() {
      cleanup();
    },
  };
}
