import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext } from './types.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolve once something accepts TCP connections on the port. */
async function listening(port: number, child: ChildProcess, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited before it listened`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`${what} did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A server under test: where it listens, its process id, and how to stop it. */
export interface BenchServer {
  name: string;
  port: number;
  pid: number;
  /** Postroom only. */
  httpPort?: number;
  token?: string;
  dataDir?: string;
  stop(): Promise<void>;
}

function exitOf(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * `postroom serve` (the built binary) on a fresh data directory: greeting delay 0 for
 * allowlisted clients (every client: no list), logs at warn so that one line per transaction
 * does not become the thing measured, room for a 200 MiB message plus its headers.
 */
export async function startPostroom(ctx: BenchContext, extraYaml = '', opts: { dataDir?: string } = {}): Promise<BenchServer> {
  const dir = mkdtempSync(path.join(ctx.tmpRoot, 'postroom-bench-'));
  // A data directory of the caller's (a store kept across two runs) is the caller's to remove.
  const dataDir = opts.dataDir ?? path.join(dir, 'data');
  const configFile = path.join(dir, 'postroom.yaml');
  writeFileSync(
    configFile,
    [
      'log: { level: warn }',
      'smtp:',
      '  maxMessageSize: 256MiB',
      '  maxClients: 500',
      '  greetingDelay: { allowlisted: 0ms }',
      extraYaml,
    ].join('\n'),
  );
  const [port, httpPort] = [await freePort(), await freePort()];
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('POSTROOM_')));
  const nodeArgs = ctx.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`] : [];
  const child = spawn(process.execPath, [...nodeArgs, path.join(root, 'bin/postroom.js'), 'serve', '--config', configFile], {
    cwd: dir,
    env: {
      ...env,
      POSTROOM_DATA_DIR: dataDir,
      POSTROOM_SMTP_LISTEN: `127.0.0.1:${port}`,
      POSTROOM_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
    },
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  try {
    await listening(port, child, 'postroom serve');
    await listening(httpPort, child, 'postroom serve (HTTP)');
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\n${stderr}`);
  }
  const token = /API token: (\S+)/.exec(stderr)?.[1];
  return {
    name: 'postroom',
    port,
    httpPort,
    token,
    dataDir,
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exitOf(child);
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Postfix's smtp-sink: answers everything and discards the mail (the upper bound of SMTP here). */
export async function startSmtpSink(): Promise<BenchServer> {
  const port = await freePort();
  const child = spawn('smtp-sink', ['-u', 'nobody', `127.0.0.1:${port}`, '1024'], { stdio: 'ignore' });
  await listening(port, child, 'smtp-sink');
  return {
    name: 'smtp-sink',
    port,
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      await exitOf(child);
    },
  };
}
