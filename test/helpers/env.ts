import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

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

/** Whether a command is on PATH. */
export function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v "$1"`, 'sh', cmd], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * The peer (a command on PATH, or a path) a test needs. Missing: under CI=true the test fails;
 * elsewhere it is skipped with the reason, so a laptop without Postfix can still run the rest.
 * `install` says how to get it when that is not `apt-get install -y PKG`.
 */
export function requirePeer(t: TestContext, cmd: string, pkg: string, install = `apt-get install -y ${pkg}`): boolean {
  if (hasCommand(cmd)) return true;
  const why = `${cmd} not installed (${install})`;
  if (process.env.CI === 'true') throw new Error(`missing peer under CI: ${why}`);
  t.skip(why);
  return false;
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
