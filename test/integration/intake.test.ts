import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import pino from 'pino';
import { MailError, toSmtpReply } from '../../src/core/errors.js';
import type { Envelope } from '../../src/core/message.js';
import { Intake } from '../../src/intake/accept.js';
import { FsBlobStore } from '../../src/store/blobs.js';
import { migrate, openDb, type Db } from '../../src/store/db.js';
import { openBlobStore } from '../../src/store/open-blobs.js';
import { validateConfig } from '../../src/config/load.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { tempDir, testBackend } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

const env = (rcptTo = ['a@example.org']): Envelope => ({
  mailFrom: 'sender@example.net',
  rcptTo,
  ingress: 'smtp',
  clientIp: '127.0.0.1',
  helo: 'client.example.net',
  receivedAt: new Date('2026-11-21T06:00:00Z'),
});

const message = (id: string | null, body = 'Hello.\r\n') =>
  Buffer.from(`${id ? `Message-ID: <${id}>\r\n` : ''}From: s@example.net\r\nSubject: test\r\n\r\n${body}`);

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function rejection(p: Promise<unknown>): Promise<MailError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof MailError, `expected MailError, got ${e}`);
    return e;
  }
  assert.fail('expected a rejection');
}

describe('intake', () => {
  let app: TestPostroom;
  before(async () => {
    app = await startTestPostroom({ smtp: { enabled: false }, http: { enabled: false } });
  });
  after(() => app.close());

  const count = async () => (await app.db.kysely.selectFrom('messages').select('id').execute()).length;

  test('keeps the bytes exactly and commits the row before resolving', async () => {
    const raw = message('keep-1@x');
    const m = await app.intake.accept(env(), [raw.subarray(0, 10), raw.subarray(10)]);
    assert.equal(m.rawSha256, sha(raw));
    assert.equal(m.size, raw.length);
    assert.equal(m.messageId, '<keep-1@x>');
    assert.equal(m.subject, 'test');
    const row = await app.db.kysely.selectFrom('messages').selectAll().where('id', '=', m.id).executeTakeFirstOrThrow();
    assert.equal(row.status, 'received');
    const stream = await app.blobs.open(m.rawSha256);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    assert.deepEqual(Buffer.concat(chunks), raw);
    assert.match(m.trace ?? '', /^Received: from client\.example\.net \(\[127\.0\.0\.1\]\)\r\n\tby mx\.postroom\.test \(Postroom [0-9a-f]{12}\) with ESMTP id \w+\r\n\tfor <a@example\.org>;\r\n\t.+ \+0000\r\n$/);
  });

  test('keeps a retransmission (same Message-ID, bytes and recipient) once', async () => {
    const before = await count();
    const first = await app.intake.accept(env(), [message('dup-1@x')]);
    const again = await app.intake.accept(env(), [message('dup-1@x')]);
    assert.equal(again.id, first.id);
    assert.equal(again.duplicate, true);
    assert.equal(await count(), before + 1);
  });

  test('keeps the same message to another recipient, or without Message-ID, as a new message', async () => {
    const before = await count();
    await app.intake.accept(env(['one@example.org']), [message('dup-2@x')]);
    await app.intake.accept(env(['two@example.org']), [message('dup-2@x')]);
    await app.intake.accept(env(), [message(null)]);
    await app.intake.accept(env(), [message(null)]);
    assert.equal(await count(), before + 4);
  });

  test('makes concurrent messages durable together (group commit) and keeps each once', async () => {
    const before = await count();
    const many = Array.from({ length: 64 }, (_, i) => app.intake.accept(env(), [message(`gc-${i}@x`, `body ${i}\r\n`)]));
    // The same retransmission racing inside one batch is still one message.
    many.push(app.intake.accept(env(), [message('gc-0@x', 'body 0\r\n')]));
    const stored = await Promise.all(many);
    assert.equal(new Set(stored.map((s) => s.id)).size, 64);
    assert.equal(await count(), before + 64);
    const batches = await app.metrics.commitBatch.get();
    const sum = batches.values.find((v) => v.metricName === 'postroom_intake_commit_batch_size_sum')!.value;
    const n = batches.values.find((v) => v.metricName === 'postroom_intake_commit_batch_size_count')!.value;
    assert.ok(n < sum, `expected some batch to hold more than one message (batches ${n}, messages ${sum})`);
  });

  test('refuses a message over maxSize with 552 5.3.4 and keeps nothing of it', async () => {
    const before = await count();
    const big = Buffer.alloc(64 * 1024, 'a');
    const e = await rejection(app.intake.accept(env(), [message('big@x'), big], { maxSize: 32 * 1024 }));
    assert.deepEqual(toSmtpReply(e), { code: 552, message: '5.3.4 Message size exceeds fixed maximum message size' });
    assert.equal(await count(), before);
    if (app.blobs instanceof FsBlobStore) assert.deepEqual(readdirSync(path.join(app.blobs.dir, 'tmp')), []);
  });

  test('refuses an empty message with 5.3.0 and one without Message-ID when required with 5.6.0', async () => {
    const empty = await rejection(app.intake.accept(env(), []));
    assert.equal(empty.status, '5.3.0');
    const noId = await rejection(app.intake.accept(env(), [message(null)], { requireMessageId: true }));
    assert.deepEqual(toSmtpReply(noId), { code: 550, message: '5.6.0 Message-ID header required' });
  });

  test('answers 451 4.3.0 (transient) when the database cannot commit', async () => {
    const t = tempDir();
    const db = openDb(undefined, t.dir);
    await migrate(db);
    const intake = new Intake({
      db,
      blobs: new FsBlobStore(path.join(t.dir, 'blobs')),
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
      hostname: 'mx.test',
    });
    await db.kysely.schema.dropTable('parts').execute();
    await db.kysely.schema.dropTable('messages').execute();
    const e = await rejection(intake.accept(env(), [message('x@x')]));
    assert.deepEqual(toSmtpReply(e), { code: 451, message: '4.3.0 Could not store the message; try again later' });
    assert.equal(e.disposition, 'transient');
    await db.close();
    t.cleanup();
  });
});

/** Mount a tmpfs of `size` on `dir` (a disk that fills up); false (skipped) where that is not allowed, except under CI. */
function mountTmpfs(t: TestContext, dir: string, size: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
    return true;
  } catch (err) {
    if (process.env.CI === 'true') throw err;
    t.skip(`cannot mount a tmpfs here (needs root): ${(err as Error).message}`);
    return false;
  }
}

/** An intake on a fresh SQLite store in `dataDir`, with the blob store the config gives. */
async function smallDiskIntake(dataDir: string): Promise<{ db: Db; intake: Intake }> {
  const db = openDb(undefined, dataDir);
  await migrate(db);
  const intake = new Intake({
    db,
    blobs: openBlobStore(validateConfig({ dataDir }), db),
    log: pino({ level: 'silent' }),
    metrics: createMetrics(),
    hostname: 'mx.test',
  });
  return { db, intake };
}

describe('intake on a full disk', { skip: testBackend() === 'postgres' ? 'file blobs only (PostgreSQL keeps blobs in the database)' : false }, () => {
  test('answers 452 4.3.1 when the blob directory is full, and keeps nothing', async (t) => {
    const tmp = tempDir();
    const blobDir = path.join(tmp.dir, 'blobs');
    mkdirSync(blobDir);
    if (!mountTmpfs(t, blobDir, '1m')) return;
    const { db, intake } = await smallDiskIntake(tmp.dir);
    try {
      const e = await rejection(intake.accept(env(), [message('full@x'), Buffer.alloc(2 * 1024 * 1024, 'x')]));
      assert.deepEqual(toSmtpReply(e), { code: 452, message: '4.3.1 Insufficient storage; try again later' });
      assert.equal((await db.kysely.selectFrom('messages').select('id').execute()).length, 0);
      assert.deepEqual(readdirSync(path.join(blobDir, 'tmp')), []);
      // Space back: the next large message is kept as a file.
      const big = Buffer.concat([message('after@x'), Buffer.alloc(512 * 1024, 'y')]);
      const ok = await intake.accept(env(), [big]);
      assert.equal(readFileSync(path.join(blobDir, ok.rawSha256.slice(0, 2), ok.rawSha256)).length, big.length);
    } finally {
      await db.close();
      execFileSync('umount', [blobDir]);
      tmp.cleanup();
    }
  });

  test('answers 452 4.3.1 when the database disk is full (small messages live there), and recovers', async (t) => {
    const tmp = tempDir();
    if (!mountTmpfs(t, tmp.dir, '2m')) return;
    const { db, intake } = await smallDiskIntake(tmp.dir);
    try {
      const kept: string[] = [];
      let refusal: MailError | undefined;
      for (let i = 0; i < 100 && !refusal; i++) {
        const raw = Buffer.concat([message(`small-${i}@x`), randomBytes(100 * 1024)]);
        try {
          kept.push((await intake.accept(env(), [raw])).id);
        } catch (e) {
          refusal = e as MailError;
        }
      }
      assert.ok(refusal, 'a 2 MiB disk must fill up');
      assert.deepEqual(toSmtpReply(refusal), { code: 452, message: '4.3.1 Insufficient storage; try again later' });
      // What was acknowledged before the disk filled is still there, whole.
      const rows = await db.kysely.selectFrom('messages').select(['id', 'raw_sha256', 'size']).execute();
      assert.deepEqual(rows.map((r) => r.id).sort(), [...kept].sort());
      for (const r of rows) {
        const chunks: Buffer[] = [];
        for await (const c of await intake['deps'].blobs.open(r.raw_sha256)) chunks.push(c as Buffer);
        assert.equal(sha(Buffer.concat(chunks)), r.raw_sha256);
      }
      // Space back: the next message is kept (the refused commit left no connection behind).
      execFileSync('mount', ['-o', 'remount,size=16m', tmp.dir]);
      const after = await intake.accept(env(), [message('after-full@x')]);
      assert.equal(after.duplicate, undefined);
    } finally {
      await db.close();
      execFileSync('umount', [tmp.dir]);
      tmp.cleanup();
    }
  });
});
