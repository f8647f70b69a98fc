import { spawnSync } from 'node:child_process';
import { accessSync, appendFileSync, constants, mkdtempSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = 'postroom-test-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  // Retried: a directory can refuse removal for a moment (ENOTEMPTY while a child's last write lands).
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 }) };
}

/** A free TCP port on 127.0.0.1 (high, ephemeral), never one this process was given before. */
export async function freePort(): Promise<number> {
  // The kernel may hand a just-closed port out again: two picks for one server's SMTP and HTTP
  // listeners could coincide, and the second bind would fail.
  for (;;) {
    const port = await probePort();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

const handedOut = new Set<number>();

function probePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Where `cmd` resolves on PATH, like the shell's `command -v` (no shell involved), or undefined.
 * An absolute path counts only when a PATH directory holds an executable of the same name that
 * is the same file (after symlinks): the peers are found through PATH alone, so a PATH that
 * leaves them out hides them, as on a machine without them.
 */
export function onPath(cmd: string): string | undefined {
  const want = path.isAbsolute(cmd) ? realOrUndefined(cmd) : undefined;
  if (path.isAbsolute(cmd) && !want) return undefined;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, path.basename(cmd));
    try {
      accessSync(p, constants.X_OK);
      if (!statSync(p).isFile()) continue;
    } catch {
      continue;
    }
    if (!want) return p;
    if (realOrUndefined(p) === want) return cmd;
  }
  return undefined;
}

function realOrUndefined(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

/** Whether something accepts a TCP connection on 127.0.0.1:port now (a peer that is up). */
export function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/**
 * Whether an SMTP server on the port greets (a `220 ` line) within `timeoutMs`. A listening port
 * is not enough for a Postfix: its master accepts at once, but the first smtpd(8) it spawns on a
 * cold, loaded machine can take longer than a client's 10 s greeting timeout (seen in CI).
 */
export function smtpGreets(port: number, timeoutMs = 30_000): Promise<boolean> {
  return new Promise((resolve) => {
    let buf = '';
    const s = net.connect(port, '127.0.0.1');
    const done = (v: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      if (buf.includes('\n')) {
        // Say goodbye so the server logs a clean session, not a lost connection.
        if (buf.startsWith('220')) s.write('QUIT\r\n');
        done(buf.startsWith('220'));
      }
    });
    s.on('error', () => done(false));
    s.on('close', () => done(false));
  });
}

/** Whether a command is on PATH. */
export function hasCommand(cmd: string): boolean {
  return onPath(cmd) !== undefined;
}

/** Debian's Chromium (the console's browser tests drive it through playwright-core). */
export const CHROMIUM = '/usr/bin/chromium';

/** Debian's Python (its `email` package and python3-aiosmtpd are what the tests compare against). */
export const DEBIAN_PYTHON = '/usr/bin/python3';

/**
 * The real peers the tests talk to, each with how to tell it is there. `npm run peers`
 * (scripts/peers.sh) installs every one of them; that script holds the Debian package list.
 */
const PEERS = {
  swaks: () => hasCommand('swaks'),
  postfix: () => ['postfix', 'postconf', 'postqueue'].every(hasCommand),
  'smtp-source': () => hasCommand('smtp-source'),
  'smtp-sink': () => hasCommand('smtp-sink'),
  dovecot: () => hasCommand('dovecot') && hasCommand('openssl'),
  python3: () => hasCommand(DEBIAN_PYTHON),
  aiosmtpd: () => hasCommand(DEBIAN_PYTHON) && spawnSync(DEBIAN_PYTHON, ['-c', 'import aiosmtpd.controller'], { stdio: 'ignore' }).status === 0,
  // Not on PATH by design: scripts/peers.sh unpacks it under .peers/ (see test/helpers/exim.ts).
  exim: () => {
    try {
      accessSync(eximBinary(), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  },
  sqlite3: () => hasCommand('sqlite3'),
  // Debian's chromium, driven by playwright-core in the console's browser tests.
  chromium: () => {
    try {
      accessSync(CHROMIUM, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  },
  // python3-dkim's signers: DKIM and ARC signatures made outside Node (sender authentication tests).
  dkimsign: () => hasCommand('dkimsign') && hasCommand('arcsign') && spawnSync(DEBIAN_PYTHON, ['-c', 'import dkim, authres'], { stdio: 'ignore' }).status === 0,
  rsync: () => hasCommand('rsync'),
  pg_dump: () => hasCommand('pg_dump'),
  curl: () => hasCommand('curl'),
  cadaver: () => hasCommand('cadaver'),
  strace: () => hasCommand('strace'),
  openssl: () => hasCommand('openssl'),
  // A PostgreSQL server a test can start and stop itself (the machine's shared one must stay up).
  // As root it runs as the `postgres` user (postgres refuses to run as root).
  'postgres-server': () => postgresBinDir() !== undefined && (process.getuid?.() !== 0 || spawnSync('id', ['-u', 'postgres'], { stdio: 'ignore' }).status === 0),
} satisfies Record<string, () => boolean>;

export type Peer = keyof typeof PEERS;

/**
 * The newest Debian PostgreSQL server's bin directory (`/usr/lib/postgresql/N/bin`, holding
 * initdb, pg_ctl and postgres; not on PATH by design), or undefined.
 */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  let versions: string[];
  try {
    versions = readdirSync(root).filter((v) => /^\d+$/.test(v));
  } catch {
    return undefined;
  }
  for (const v of versions.sort((a, b) => Number(b) - Number(a))) {
    const bin = path.join(root, v, 'bin');
    try {
      for (const tool of ['initdb', 'pg_ctl', 'postgres']) accessSync(path.join(bin, tool), constants.X_OK);
      return bin;
    } catch {
      continue;
    }
  }
  return undefined;
}

/** Where scripts/peers.sh unpacked Exim (POSTROOM_EXIM_DIR overrides, as there). */
export function eximBinary(): string {
  return path.join(process.env.POSTROOM_EXIM_DIR ?? path.join(repoRoot, '.peers/exim4'), 'usr/sbin/exim4');
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const known = new Map<Peer, boolean>();

/** The peers of `peers` this machine lacks (each looked at once per process). */
export function missingPeers(...peers: Peer[]): Peer[] {
  return peers.filter((p) => {
    if (!known.has(p)) known.set(p, PEERS[p]());
    return !known.get(p);
  });
}

/**
 * Notes a skip for scripts/run-tests.mjs, which ends the run with one line naming what was
 * skipped for lack of which peer (it passes the file in POSTROOM_TEST_PEER_LOG).
 */
function noteSkip(missing: Peer[], test: string): void {
  const log = process.env.POSTROOM_TEST_PEER_LOG;
  if (!log) return;
  const file = path.relative(repoRoot, process.argv[1] ?? '');
  appendFileSync(log, `${JSON.stringify({ peers: missing, file, test })}\n`);
}

function reason(missing: Peer[]): string {
  return `${missing.join(', ')} not installed (npm run peers installs the test peers)`;
}

/**
 * The peers a test needs. Missing: under CI=true the test fails; elsewhere it is skipped with
 * the reason, so a laptop without Postfix can still run the rest.
 */
export function requirePeer(t: TestContext, ...peers: Peer[]): boolean {
  const missing = missingPeers(...peers);
  if (!missing.length) return true;
  if (process.env.CI === 'true') throw new Error(`missing peer under CI: ${reason(missing)}`);
  noteSkip(missing, t.name);
  t.skip(reason(missing));
  return false;
}

/**
 * For a suite whose hooks start a peer: `describe(name, { skip: skipWithout(name, 'postfix') }, …)`.
 * A skip reason when a peer is missing outside CI (its hooks then do not run); under CI=true the
 * file fails on it.
 */
export function skipWithout(suite: string, ...peers: Peer[]): string | false {
  const missing = missingPeers(...peers);
  if (!missing.length) return false;
  if (process.env.CI === 'true') throw new Error(`missing peer under CI: ${reason(missing)} (suite "${suite}")`);
  noteSkip(missing, suite);
  return reason(missing);
}

/** Which store the suite runs on this time (scripts/run-tests.mjs runs it once per backend). */
export function testBackend(): 'sqlite' | 'postgres' {
  return process.env.POSTROOM_TEST_BACKEND === 'postgres' ? 'postgres' : 'sqlite';
}

/** Poll `fn` until it returns a truthy value or `ms` pass (then throws with `what`). */
export async function waitFor<T>(fn: () => Promise<T> | T, what: string, ms = 10_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Watches how far this process's memory (JS heap plus Buffers, the memory a body held whole
 * would take; RSS never shrinks, so it would count an earlier test's garbage) rises above where
 * it stands now. `peak()` is the highest rise seen so far, in bytes; `stop()` ends the sampling.
 */
export function memoryWatch(everyMs = 10): { peak(): number; reset(): void; stop(): void } {
  const now = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  (globalThis as { gc?: () => void }).gc?.();
  let base = now();
  let top = base;
  const timer = setInterval(() => (top = Math.max(top, now())), everyMs);
  return {
    peak: () => Math.max(top, now()) - base,
    reset: () => {
      base = now();
      top = base;
    },
    stop: () => clearInterval(timer),
  };
}
