import { execFile, spawnSync } from 'node:child_process';
import { chownSync } from 'node:fs';
import path from 'node:path';
import { freePort, postgresBinDir, tempDir } from './env.js';

/**
 * A PostgreSQL server of the test's own (initdb in a temp dir, a free port on 127.0.0.1, trust),
 * for tests that stop and start it: the machine's shared server must stay up for every other
 * test. As root it runs as the `postgres` user (postgres refuses root). Peer: 'postgres-server'.
 */
export interface PrivatePostgres {
  port: number;
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  start(): Promise<void>;
  /** `pg_ctl stop -m immediate`: every backend killed at once, no shutdown checkpoint (a crash). */
  crash(): Promise<void>;
  /** Stop it (if running) and remove its directory. */
  cleanup(): Promise<void>;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('no PostgreSQL server under /usr/lib/postgresql (peer postgres-server)');
  const tmp = tempDir('private-pg-');
  const as = process.getuid?.() === 0 ? { uid: Number(id('-u')), gid: Number(id('-g')) } : undefined;
  if (as) chownSync(tmp.dir, as.uid, as.gid);
  const data = path.join(tmp.dir, 'data');
  const port = await freePort();
  const run = (tool: string, args: string[]) =>
    new Promise<void>((resolve, reject) =>
      execFile(path.join(bin, tool), args, { ...(as ?? {}), cwd: tmp.dir, timeout: 60_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${tool} ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`)) : resolve(),
      ),
    );
  // fsync=off: the tests crash the server, not the machine; the page cache survives a crash of
  // the server, and the shared machine's disk is spared. The socket directory is ours too.
  const opts = `-p ${port} -k ${tmp.dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  let running = false;
  const pg: PrivatePostgres = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async start() {
      await run('pg_ctl', ['-D', data, '-l', path.join(tmp.dir, 'log'), '-w', '-t', '60', '-o', opts, 'start']);
      running = true;
    },
    async crash() {
      await run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '60', 'stop']);
      running = false;
    },
    async cleanup() {
      if (running) await pg.crash().catch(() => {});
      tmp.cleanup();
    },
  };
  try {
    await run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
    await pg.start();
  } catch (err) {
    tmp.cleanup();
    throw err;
  }
  return pg;

  function id(flag: string): string {
    return spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim();
  }
}
