import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { freePort, requirePeer, tempDir, testBackend, waitFor } from '../helpers/env.js';
import { serveStarter } from '../helpers/serve-child.js';
import { assertKeptOnce, showSent, witness, type Sent } from '../helpers/swaks-witness.js';

// A disk that fails fsync (EIO) under a running `postroom serve`: strace attached to the live
// process makes every fsync/fdatasync of it fail without doing it. Nothing is durable then, so
// no 250 may be given (Promise 1 of DESIGN.md): each message must get a transient 4xx,
// never a hang, and once the disk works again (strace detached) mail is accepted and everything
// that got a 250 is kept exactly once and reads back whole, also after a restart.

/** Attach strace to `pid`, failing the fsyncs it selects; resolves once it is attached. */
async function injectEio(pid: number, only?: string): Promise<{ detach(): Promise<void>; log(): string }> {
  const args = ['-f', '-p', String(pid), '-e', 'trace=fsync,fdatasync', '-e', 'inject=fsync,fdatasync:error=EIO'];
  // -P: only the syscalls on this path (strace follows descriptors to their paths).
  if (only) args.push('-P', only);
  const strace = spawn('strace', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  strace.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
  const exited = new Promise((r) => strace.once('exit', r));
  await waitFor(() => {
    if (strace.exitCode !== null) throw new Error(`strace exited: ${log}`);
    return /attached/.test(log);
  }, 'strace to attach', 30_000);
  return {
    // SIGINT: strace detaches from every thread and exits, leaving the process running.
    async detach() {
      strace.kill('SIGINT');
      await exited;
    },
    log: () => log,
  };
}

it('fsync fails with EIO (strace inject): every message gets 451, never a 250 or a hang; once the disk works every 250 is kept once and readable after a restart', { timeout: 110_000 }, async (t) => {
  if (!requirePeer(t, 'strace', 'swaks')) return;
  if (testBackend() !== 'sqlite') return t.skip('on PostgreSQL the server process does the fsyncs of a commit, not Postroom: the SQLite store is where they are ours to fail');
  const tmp = tempDir('fsync-eio-');
  t.after(tmp.cleanup);
  const dataDir = path.join(tmp.dir, 'data');
  const smtpPort = await freePort();
  const httpPort = await freePort();
  const config = path.join(tmp.dir, 'postroom.yaml');
  writeFileSync(config, JSON.stringify({ dataDir, log: { level: 'warn' }, smtp: { listen: `127.0.0.1:${smtpPort}` }, http: { listen: `127.0.0.1:${httpPort}` } }));
  const serve = serveStarter(t, ['--config', config], {}, tmp.dir);
  // Small messages live in the database (the WAL's fsync), 300 KiB ones in a blob file (its fsync,
  // its directory's, then the WAL's): both ways of keeping, two at a time so a failed group
  // commit has more than one waiter.
  const mail = witness(smtpPort, tmp.dir, 'eio', (k) => (k % 2 ? 300 * 1024 : 2048));
  const batch = async (count: number, numbers?: number[]) => {
    const out: Sent[] = [];
    for (let i = 0; i < (numbers?.length ?? count); i += 2) {
      const pair = numbers ? numbers.slice(i, i + 2).map((k) => mail.send(k)) : [mail.send(), ...(i + 1 < count ? [mail.send()] : [])];
      out.push(...(await Promise.all(pair)));
    }
    return out;
  };

  const server = await serve();
  for (const s of await batch(2)) assert.ok(s.accepted, showSent(s));

  // Every fsync fails, then only the WAL's (the blob file and its directory were synced and
  // renamed into place; the commit that names it is what fails).
  const wal = path.join(dataDir, 'postroom.db-wal');
  const refusedKept: number[] = [];
  let refused = 0;
  for (const only of [undefined, wal]) {
    const strace = await injectEio(server.child.pid!, only);
    let failing: Sent[];
    try {
      failing = await batch(4);
    } finally {
      await strace.detach();
    }
    assert.match(strace.log(), /= -1 EIO .*\(INJECTED\)/, 'strace did fail fsyncs');
    for (const s of failing) {
      assert.equal(s.accepted, undefined, `no 250 while fsync fails (${only ?? 'every fsync'}): ${showSent(s)}`);
      assert.match(s.refused ?? '', /^451 4\.3\.0 /, `a transient 451 4.3.0, not a hang or a 5xx (${only ?? 'every fsync'}): ${showSent(s)}`);
      refused++;
    }
    // A refused message may have been kept (its row committed, then the WAL's fsync failed),
    // but then once and whole.
    const kept = await assertKeptOnce(httpPort, server.token, failing);
    refusedKept.push(...kept.map((s) => s.n));
    // The disk works again: the same process accepts mail, and what the sender retries (as an
    // MTA does after a 451) is kept once, also a message whose row was committed before the
    // WAL's fsync failed (the retry is recognised as the same message).
    for (const s of await batch(0, failing.map((f) => f.n))) assert.ok(s.accepted, `the retry is accepted: ${showSent(s)}`);
    for (const s of await batch(2)) assert.ok(s.accepted, `accepted again after the fault: ${showSent(s)}`);
  }

  assert.ok(mail.all().every((s) => s.accepted));
  await assertKeptOnce(httpPort, server.token, mail.all());
  server.child.kill('SIGTERM');
  assert.equal(await server.exited, 0, `clean stop after the fsync errors:\n${server.stderr()}`);
  const again = await serve();
  for (const s of await batch(2)) assert.ok(s.accepted, showSent(s));
  await assertKeptOnce(httpPort, again.token, mail.all());
  t.diagnostic(
    `${mail.all().length} messages, each acknowledged once; ${refused} refused with 451 while fsync failed, ` +
      `${refusedKept.length} of them kept anyway (committed, then the WAL's fsync failed; the retry found them): ${refusedKept.join(', ') || 'none'}`,
  );
  again.child.kill('SIGTERM');
  assert.equal(await again.exited, 0);
});
