import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, tempDir, waitFor } from './env.js';

/**
 * A throw-away Postfix on 127.0.0.1:<free port> (the recipe of ../shared/peers/postfix-instance.sh),
 * run as root like any Postfix. Mail for `pipeDomain` goes to the `postroom` pipe transport
 * (argv given, run as `nobody`); mail for `relayDomain` is relayed to 127.0.0.1:relayPort.
 * Postfix refuses `postfix -c DIR` unless the default main.cf lists DIR in
 * alternate_config_directories: we add ours and take it out again at stop.
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

function postconfList(): string[] {
  return execFileSync('postconf', ['-h', 'alternate_config_directories'], { encoding: 'utf8' }).split(/[\s,]+/).filter(Boolean);
}

/** Take our directory out of alternate_config_directories again. */
function forget(etc: string): void {
  const left = postconfList().filter((d) => d !== etc);
  execFileSync('postconf', ['-e', `alternate_config_directories = ${left.join(' ')}`]);
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
  const alternates = postconfList();
  if (!alternates.includes(etc)) execFileSync('postconf', ['-e', `alternate_config_directories = ${[...alternates, etc].join(' ')}`]);
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
    forget(etc);
    tmp.cleanup();
    throw new Error(`postfix start failed: ${(e as { stderr?: string }).stderr ?? e}`);
  }
  const net = await import('node:net');
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      }),
    'postfix listening',
    20_000,
  );
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
      try {
        execFileSync('postfix', ['-c', etc, 'stop'], { stdio: 'ignore' });
      } finally {
        forget(etc);
        tmp.cleanup();
      }
    },
  };
}
