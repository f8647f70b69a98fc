import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { test } from 'node:test';
import { sql } from 'kysely';
import { openDb } from '../../src/store/db.js';
import { tempDir, waitFor } from '../helpers/env.js';

// SQLite only (the file and its WAL are what these are about); runs in both passes of the suite.

test('prepared statements are reused, and still see a schema change made after they were prepared', async () => {
  const tmp = tempDir();
  const db = openDb(undefined, tmp.dir);
  try {
    await sql`create table t (a integer)`.execute(db.kysely);
    await sql`insert into t (a) values (${1})`.execute(db.kysely);
    const q = () => db.kysely.selectFrom('t' as never).selectAll().execute() as Promise<Record<string, unknown>[]>;
    assert.deepEqual(await q(), [{ a: 1 }]);
    await sql`alter table t add column b text default 'x'`.execute(db.kysely);
    // Same SQL text, so the same cached statement: SQLite re-prepares it for the new schema.
    assert.deepEqual(await q(), [{ a: 1, b: 'x' }]);
  } finally {
    await db.close();
    tmp.cleanup();
  }
});

test('backgroundCheckpoints: the thread starts once the log passes 1 MiB, then the WAL is checkpointed by it, not inside commits', async () => {
  const tmp = tempDir();
  const file = `${tmp.dir}/postroom.db`;
  const db = openDb(file, tmp.dir, { backgroundCheckpoints: true });
  const autoCheckpoint = async () => (await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(db.kysely)).rows[0].wal_autocheckpoint;
  const blob = new Uint8Array(8192).fill(7);
  const write = async (batches: number) => {
    for (let i = 0; i < batches; i++) {
      await db.kysely
        .insertInto('big' as never)
        .values(Array.from({ length: 10 }, () => ({ data: blob })) as never)
        .execute();
    }
  };
  try {
    await sql`create table big (data blob)`.execute(db.kysely);
    assert.equal(db.checkpointer!.running, false, 'a small log needs no thread');
    assert.equal(await autoCheckpoint(), 1000, 'until the thread runs, SQLite checkpoints by itself');
    // ~1.6 MiB: past the threshold, short of the 1,000 pages at which SQLite would checkpoint.
    await write(20);
    await waitFor(() => db.checkpointer!.running, 'the thread started');
    assert.equal(await autoCheckpoint(), 0, 'commits on the loop never checkpoint');
    const before = statSync(file).size;
    // Well past the 1,000 pages at which SQLite would checkpoint by itself.
    await write(60);
    // A report from after the last write, in which every frame of the log has been copied.
    db.checkpointer!.last = undefined;
    // A checkpoint that began before the last write can report after the reset, whole for the
    // log it saw (seen once on a loaded machine): wait for one that also moved every page.
    await waitFor(() => {
      const r = db.checkpointer?.last;
      return r && r.log > 0 && r.checkpointed === r.log && statSync(file).size > before + 60 * 10 * 8192;
    }, 'a checkpoint of the whole log, its pages in the database file');
  } finally {
    await db.close();
    tmp.cleanup();
  }
});

test('backgroundCheckpoints: if the thread dies, SQLite checkpoints by itself again and the owner is told', async () => {
  const tmp = tempDir();
  const errors: Error[] = [];
  const db = openDb(undefined, tmp.dir, { backgroundCheckpoints: { startAt: 0 }, onError: (e) => errors.push(e) });
  try {
    // Kill the thread the way a crash would (not through stop()).
    await (db.checkpointer as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    await waitFor(() => errors.length > 0, 'the failure reported');
    assert.match(errors[0].message, /checkpoint thread exited/);
    const auto = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(db.kysely);
    assert.equal(auto.rows[0].wal_autocheckpoint, 1000);
  } finally {
    await db.close();
    tmp.cleanup();
  }
});
