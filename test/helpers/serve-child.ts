import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor } from './env.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A `postroom serve` child process (the built binary), for tests that kill and restart it. */
export interface ServeChild {
  child: ChildProcess;
  /** The API token it printed. */
  token: string;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (or signal name) once it has exited. */
  exited: Promise<number | string>;
}

/** The environment without any POSTROOM_* a developer may have exported, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('POSTROOM_')));
  return { ...env, ...extra };
}

/**
 * Start `node bin/postroom.js serve ARGS` and wait until it prints its API token (it listens then).
 * `as`: run it as that user (uid, gid), as an operator runs it (the test runs as root).
 */
export async function startServeChild(args: string[], env: Record<string, string>, cwd: string, as?: { uid: number; gid: number }): Promise<ServeChild> {
  const child = spawn(process.execPath, [path.join(root, 'bin/postroom.js'), 'serve', ...args], {
    cwd,
    env: cleanEnv(env),
    stdio: ['ignore', 'ignore', 'pipe'],
    ...(as ?? {}),
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  let gone = false;
  void exited.then(() => (gone = true));
  let token: string;
  try {
    token = (await waitFor(
      () => {
        if (gone) throw new Error(`postroom serve exited before it was ready:\n${stderr}`);
        return /API token: (\S+)/.exec(stderr)?.[1];
      },
      'postroom serve to be ready',
      20_000,
    )) as string;
  } catch (err) {
    // Not handed to the caller, so no one else would stop it: a child left running holds its
    // PostgreSQL connections, and the test's DROP SCHEMA then waits for ever.
    child.kill('SIGKILL');
    throw err;
  }
  return { child, token, stderr: () => stderr, exited };
}

/**
 * Starts `serve` children with the same arguments (a first one, then restarts on the same data),
 * each killed with SIGKILL when the test ends if it still runs.
 */
export function serveStarter(t: TestContext, args: string[], env: Record<string, string>, cwd: string): () => Promise<ServeChild> {
  const children: ServeChild[] = [];
  t.after(() => children.forEach((c) => c.child.kill('SIGKILL')));
  return async () => {
    const c = await startServeChild(args, env, cwd);
    children.push(c);
    return c;
  };
}
