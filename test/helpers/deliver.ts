import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './env.js';
import type { SunkMessage } from './py-smtp-sink.js';
import { cleanEnv } from './serve-child.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The built binary (scripts/run-tests.mjs builds dist/ first). */
export const BIN = path.join(root, 'bin/postroom.js');

export interface DeliverRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Every byte of the input went into the pipe (the command read it to its end, no EPIPE). */
  inputWhole: boolean;
}

/** Run `node bin/postroom.js deliver ARGS` with `input` on stdin, as an MTA's pipe would. */
export function runDeliver(args: string[], input: Buffer | string, opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<DeliverRun> {
  const child = spawn(process.execPath, [BIN, 'deliver', ...args], {
    cwd: opts.cwd ?? root,
    env: cleanEnv(opts.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let inputWhole = true;
  child.stdin.on('error', () => (inputWhole = false));
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input);
  // In 1 MiB writes, so a command that stops reading early shows up as EPIPE here.
  void (async () => {
    for (let off = 0; off < buf.length; off += 1 << 20) {
      if (!child.stdin.write(buf.subarray(off, off + (1 << 20)))) {
        await new Promise((r) => {
          child.stdin.once('drain', r);
          child.stdin.once('error', r);
          child.stdin.once('close', r);
        });
      }
      if (!child.stdin.writable) {
        inputWhole = false;
        return;
      }
    }
    child.stdin.end();
  })();
  return new Promise((resolve) => {
    child.on('close', (code) => resolve({ code, stdout, stderr, inputWhole }));
  });
}

/**
 * The INI file `postroom deliver` reads its token from, in `dir`, readable by the pipe's user
 * (an MTA runs the pipe as nobody): `[config-default]` selecting `[webservice-main]`.
 */
export function writeDeliverIni(dir: string, token: string): string {
  chmodSync(dir, 0o755);
  const file = path.join(dir, 'postroom-deliver.ini');
  writeFileSync(file, `[config-default]\nwebservice = main\n\n[webservice-main]\ntoken = ${token}\n`, { mode: 0o644 });
  return file;
}

/** Create a group through the API with members NAME@relay.test; returns its id. */
export async function createRelayGroup(
  api: (path: string, init?: RequestInit) => Promise<Response>,
  group: { name: string; address: string },
  members = ['ann', 'bob', 'cy'],
): Promise<number> {
  const res = await api('/api/v1/groups', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...group, members: members.map((n) => ({ email: `${n}@relay.test` })) }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return ((await res.json()) as { id: number }).id;
}

/**
 * Wait for the relayed copies of a post with `subject` at the sink, one per member of a
 * createRelayGroup group, and check who they went to. With `list` (the group's address and
 * name), also the VERP return path and the list headers each copy carries.
 */
export async function relayedCopies(
  sink: { messages(): SunkMessage[] },
  subject: string,
  opts: { list?: { address: string; name: string }; what?: string; ms?: number; members?: string[] } = {},
): Promise<SunkMessage[]> {
  const members = opts.members ?? ['ann', 'bob', 'cy'];
  // Bounces (from <>) may quote the post's headers; a relayed copy never comes from <>.
  const copies = () => sink.messages().filter((m) => m.mailFrom !== '<>' && m.raw.toString('latin1').includes(`Subject: ${subject}`));
  const got = await waitFor(() => (copies().length === members.length ? copies() : undefined), opts.what ?? 'the copies at the sink', opts.ms ?? 30_000);
  assert.deepEqual(got.map((m) => m.rcptTo[0]).sort(), members.map((n) => `${n}@relay.test`).sort());
  if (opts.list) {
    const [local, domain] = opts.list.address.split('@');
    const listId = `${local}.${domain}`.replace(/\./g, '\\.');
    for (const m of got) {
      const [user] = m.rcptTo[0].split('@');
      assert.equal(m.mailFrom, `${local}+bounces-${user}=relay.test@${domain}`);
      assert.match(m.raw.toString('latin1'), new RegExp(`^List-Id: "${opts.list.name}" <${listId}>\\r?$`, 'm'));
      assert.match(m.raw.toString('latin1'), /^Precedence: list\r?$/m);
    }
  }
  return got;
}
