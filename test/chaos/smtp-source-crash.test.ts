import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { DEBIAN_PYTHON, freePort, requirePeer, tempDir, testBackend } from '../helpers/env.js';
import { startServeChild, type ServeChild } from '../helpers/serve-child.js';

// Promise 1 of DESIGN.md under a crash: a message that got a 250 is kept, exactly once, and
// nothing half-written is ever kept. The server is a real `postroom serve` process, killed with
// SIGKILL (no chance to clean up) while Postfix's smtp-source and a Python smtplib client keep
// sending, then restarted on the same data directory.
//
// smtp-source reports no per-message outcome, so the Python client is the witness: it prints
// which numbered message (unique Message-ID) got a 250 and the sha256 of the exact bytes sent.

const here = path.dirname(fileURLToPath(import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run short smtp-source batches back to back until stopped; a dead server just ends a batch. */
function smtpSourceLoop(port: number): { stop(): Promise<number> } {
  let stopping = false;
  let current: ChildProcess | undefined;
  let batches = 0;
  const done = (async () => {
    while (!stopping) {
      current = spawn(
        'smtp-source',
        ['-s', '4', '-m', '60', '-l', '4096', '-d', '-N', '-f', 'load@client.test', '-t', 'sink@postroom.test', `127.0.0.1:${port}`],
        { stdio: 'ignore' },
      );
      const exited = new Promise((r) => current!.once('exit', r));
      const guard = setTimeout(() => current?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(guard);
      batches++;
      await sleep(50);
    }
  })();
  return {
    async stop() {
      stopping = true;
      current?.kill('SIGTERM');
      await done;
      return batches;
    },
  };
}

it('every message that got a 250 is kept exactly once across SIGKILL and restart, and only whole messages are kept', { timeout: 600_000 }, async (t) => {
  if (!requirePeer(t, 'smtp-source')) return;
  if (!requirePeer(t, 'python3')) return;
  if (testBackend() !== 'sqlite') return t.skip('runs against the embedded SQLite store (the PostgreSQL run covers the same intake)');
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const dataDir = path.join(tmp.dir, 'data');
  const configFile = path.join(tmp.dir, 'postroom.yaml');
  // One log line per transaction would be thousands of lines nobody reads here.
  writeFileSync(configFile, 'log:\n  level: warn\n');
  const smtpPort = await freePort();
  const env = {
    POSTROOM_DATA_DIR: dataDir,
    POSTROOM_SMTP_LISTEN: `127.0.0.1:${smtpPort}`,
    POSTROOM_HTTP_LISTEN: `127.0.0.1:${await freePort()}`,
  };
  const children: ServeChild[] = [];
  t.after(() => children.forEach((c) => c.child.kill('SIGKILL')));
  const serve = async () => {
    const c = await startServeChild(['--config', configFile], env, tmp.dir);
    children.push(c);
    return c;
  };

  let server = await serve();
  const client = spawn(DEBIAN_PYTHON, [path.join(here, 'smtp-source-crash.client.py'), '127.0.0.1', String(smtpPort), 'k'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => client.kill('SIGKILL'));
  let clientOut = '';
  client.stdout.setEncoding('utf8').on('data', (d: string) => (clientOut += d));
  const clientExited = new Promise((r) => client.once('exit', r));
  const load = smtpSourceLoop(smtpPort);

  for (let kill = 0; kill < 2; kill++) {
    await sleep(2_500);
    server.child.kill('SIGKILL');
    assert.equal(await server.exited, 'SIGKILL');
    await sleep(200);
    server = await serve();
  }
  await sleep(2_500);
  client.kill('SIGTERM');
  await clientExited;
  const batches = await load.stop();
  server.child.kill('SIGTERM');
  assert.equal(await server.exited, 0, `clean stop after the crashes:\n${server.stderr()}`);

  // What the witness saw.
  const tried = new Map<number, string>();
  const ok: number[] = [];
  let errors = 0;
  let okAfterLastError = 0;
  for (const line of clientOut.split('\n')) {
    const [what, n, extra] = line.split(' ');
    if (what === 'TRY') tried.set(Number(n), extra);
    if (what === 'OK') (ok.push(Number(n)), okAfterLastError++);
    if (what === 'ERR') (errors++, (okAfterLastError = 0));
  }
  assert.ok(errors >= 2, `each kill cut off the client (${errors} failed attempts)`);
  assert.ok(ok.length >= 20, `the client got 250s (${ok.length})`);
  assert.ok(okAfterLastError > 0, 'the restarted server accepted mail again');
  assert.ok(batches >= 3, `smtp-source ran (${batches} batches)`);

  const db = new Database(path.join(dataDir, 'postroom.db'), { readonly: true });
  t.after(() => db.close());
  const rows = db.prepare('SELECT id, message_id, size, raw_sha256 FROM messages').all() as {
    id: string;
    message_id: string | null;
    size: number;
    raw_sha256: string;
  }[];

  // Every acknowledged message: kept exactly once, with exactly the bytes that were sent.
  for (const n of ok) {
    const kept = rows.filter((r) => r.message_id === `<crash-k-${n}@client.test>`);
    assert.equal(kept.length, 1, `message ${n} got a 250 and is kept ${kept.length} times`);
    assert.equal(kept[0].raw_sha256, tried.get(n), `message ${n} is kept byte for byte`);
  }
  // A message of the witness that never got its 250 may be kept (the crash came between the
  // commit and the reply), but then whole and once.
  for (const r of rows.filter((x) => x.message_id?.startsWith('<crash-k-'))) {
    const n = Number(/<crash-k-(\d+)@/.exec(r.message_id!)![1]);
    assert.equal(r.raw_sha256, tried.get(n), `message ${n} is kept whole`);
  }
  // Every row, smtp-source's included, points at a blob holding exactly its bytes.
  const load4k = rows.filter((r) => !r.message_id?.startsWith('<crash-k-'));
  assert.ok(load4k.length > 0, 'smtp-source messages were kept');
  // Small blobs live in the database (blob_chunks), larger ones as files under blobs/.
  const chunks = db.prepare('SELECT data FROM blob_chunks WHERE sha256 = ? ORDER BY seq');
  const blobOf = (sha: string): Buffer => {
    const file = path.join(dataDir, 'blobs', sha.slice(0, 2), sha);
    if (existsSync(file)) return readFileSync(file);
    return Buffer.concat((chunks.all(sha) as { data: Buffer }[]).map((c) => c.data));
  };
  for (const r of rows) {
    const blob = blobOf(r.raw_sha256);
    assert.equal(blob.length, r.size, `row ${r.id}: blob size`);
    assert.equal(createHash('sha256').update(blob).digest('hex'), r.raw_sha256, `row ${r.id}: blob sha256`);
  }
  t.diagnostic(
    `${ok.length} acknowledged to the witness, ${errors} cut off; ${load4k.length} smtp-source messages kept in ${batches} batches`,
  );
});
