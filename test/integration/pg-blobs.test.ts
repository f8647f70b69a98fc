import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MailError } from '../../src/core/errors.js';
import { CHUNK_SIZE, DbBlobStore } from '../../src/store/pg-blobs.js';
import { openTestDb, type TestDb } from '../helpers/test-db.js';

async function* pieces(buf: Buffer, size = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function readAll(s: AsyncIterable<Buffer>): Promise<{ data: Buffer; reads: number[] }> {
  const out: Buffer[] = [];
  for await (const c of s) out.push(c);
  return { data: Buffer.concat(out), reads: out.map((c) => c.length) };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('blobs kept in the database (chunked)', () => {
  let db: TestDb;
  let blobs: DbBlobStore;
  before(async () => {
    db = await openTestDb();
    blobs = new DbBlobStore(db.kysely, path.join(db.dir, 'staging'));
  });
  after(() => db.cleanup());

  test('a 2.5 MiB blob comes back byte for byte, streamed in 1 MiB chunks in order', async () => {
    const bytes = randomBytes(2.5 * CHUNK_SIZE);
    const staged = await blobs.stage(pieces(bytes));
    assert.equal(staged.sha256, sha(bytes));
    assert.equal(staged.size, bytes.length);
    await db.kysely.transaction().execute((trx) => blobs.commit([staged], trx));
    assert.ok(staged.tempPath, 'a blob over one chunk is staged in a file');
    assert.equal(existsSync(staged.tempPath), false, 'staging file removed after commit');
    const chunks = await db.kysely.selectFrom('blob_chunks').select(['seq']).where('sha256', '=', staged.sha256).orderBy('seq').execute();
    assert.deepEqual(chunks.map((c) => c.seq), [0, 1, 2]);
    const { data, reads } = await readAll(await blobs.open(staged.sha256));
    assert.ok(data.equals(bytes));
    assert.deepEqual(reads, [CHUNK_SIZE, CHUNK_SIZE, CHUNK_SIZE / 2]);
    assert.equal(await blobs.has(staged.sha256), true);
  });

  test('the same content committed twice, even at the same time, is kept once', async () => {
    const bytes = randomBytes(3000);
    const a = await blobs.stage(pieces(bytes));
    const b = await blobs.stage(pieces(bytes));
    const c = await blobs.stage(pieces(bytes));
    await Promise.all([
      db.kysely.transaction().execute((trx) => blobs.commit([a, b], trx)),
      db.kysely.transaction().execute((trx) => blobs.commit([c], trx)),
    ]);
    const rows = await db.kysely.selectFrom('blob_chunks').select('seq').where('sha256', '=', a.sha256).execute();
    assert.equal(rows.length, 1);
    assert.ok((await readAll(await blobs.open(a.sha256))).data.equals(bytes));
  });

  test('many small blobs in one commit are all kept (batched inserts)', async () => {
    const all = Array.from({ length: 300 }, (_, i) => randomBytes(10_000 + i));
    const staged = await Promise.all(all.map((b) => blobs.stage(pieces(b))));
    await db.kysely.transaction().execute((trx) => blobs.commit(staged, trx));
    for (const [i, s] of staged.entries()) {
      assert.ok((await readAll(await blobs.open(s.sha256))).data.equals(all[i]), `blob ${i}`);
    }
  });

  test('a commit whose transaction rolls back keeps nothing', async () => {
    const bytes = randomBytes(5000);
    const staged = await blobs.stage(pieces(bytes));
    await assert.rejects(
      db.kysely.transaction().execute(async (trx) => {
        await blobs.commit([staged], trx);
        throw new Error('the message row failed');
      }),
      /the message row failed/,
    );
    assert.equal(await blobs.has(staged.sha256), false);
    await assert.rejects(blobs.open(staged.sha256), (e: unknown) => e instanceof MailError && e.code === 'NOT_FOUND');
  });

  test('commit outside a transaction opens its own (blob row and chunks together)', async () => {
    const bytes = randomBytes(CHUNK_SIZE + 10);
    const staged = await blobs.stage(pieces(bytes));
    await blobs.commit([staged], db.kysely);
    assert.ok((await readAll(await blobs.open(staged.sha256))).data.equals(bytes));
  });

  test('staging past maxSize throws TOO_LARGE and leaves no staging file', async () => {
    const before = readdirSync(blobs.stagingDir).length;
    await assert.rejects(
      blobs.stage(pieces(randomBytes(200_000)), { maxSize: 100_000 }),
      (e: unknown) => e instanceof MailError && e.code === 'TOO_LARGE',
    );
    assert.equal(readdirSync(blobs.stagingDir).length, before);
  });

  test('discard removes the staging file and keeps nothing', async () => {
    const staged = await blobs.stage(pieces(randomBytes(CHUNK_SIZE + 100)));
    assert.ok(staged.tempPath);
    await blobs.discard(staged);
    assert.equal(existsSync(staged.tempPath), false);
    assert.equal(await blobs.has(staged.sha256), false);
  });

  test('an unknown hash is NOT_FOUND', async () => {
    await assert.rejects(blobs.open('0'.repeat(64)), (e: unknown) => e instanceof MailError && e.code === 'NOT_FOUND');
  });
});
