import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { openDb, type Db } from '../../src/store/db.js';
import { batchedWrite, type WriteMode } from '../../src/store/write-batch.js';
import { testBackend } from '../helpers/env.js';
import { openTestDb, type TestDb } from '../helpers/test-db.js';

describe('batchedWrite: group commit for the writes after intake', () => {
  let db: TestDb;
  let other: Db;
  before(async () => {
    db = await openTestDb();
    await sql`create table batch_test (k text primary key, v integer not null)`.execute(db.kysely);
    // A second connection to the same store sees only what is committed.
    other = openDb(db.url, db.dir);
  });
  after(async () => {
    await other.close();
    await db.cleanup();
  });

  const insert = (mode: WriteMode, k: string, v: number) =>
    batchedWrite(db, mode, async (trx) => {
      await trx.insertInto('batch_test' as never).values({ k, v } as never).execute();
      return v;
    });
  const committed = async (k: string) =>
    !!(await sql<{ k: string }>`select k from batch_test where k = ${k}`.execute(other.kysely)).rows.length;

  for (const mode of ['relaxed', 'durable'] as const) {
    test(`${mode}: writes issued together each resolve with their own result, and all are kept`, async () => {
      const values = Array.from({ length: 150 }, (_, i) => i);
      const got = await Promise.all(values.map((v) => insert(mode, `${mode}-all-${v}`, v)));
      assert.deepEqual(got, values);
      for (const v of [0, 63, 64, 149]) assert.ok(await committed(`${mode}-all-${v}`), `row ${v}`);
    });
  }

  test(testBackend() === 'sqlite' ? 'SQLite: writes issued together share one transaction' : 'PostgreSQL: each write commits on its own', async () => {
    if (testBackend() === 'sqlite') {
      let firstVisibleToOthers: boolean | undefined;
      const first = insert('relaxed', 'shared-1', 1);
      const last = batchedWrite(db, 'relaxed', async (trx) => {
        await trx.insertInto('batch_test' as never).values({ k: 'shared-2', v: 2 } as never).execute();
        firstVisibleToOthers = await committed('shared-1');
      });
      await Promise.all([first, last]);
      assert.equal(firstVisibleToOthers, false, 'the first is committed with the second, not before');
    } else {
      // The second write holds its transaction open until the first has committed: in a shared
      // transaction the first could not commit first, and would time out here.
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const last = batchedWrite(db, 'relaxed', async (trx) => {
        await trx.insertInto('batch_test' as never).values({ k: 'shared-2', v: 2 } as never).execute();
        await gate;
      });
      const first = insert('relaxed', 'shared-1', 1);
      let timer: NodeJS.Timeout | undefined;
      const alone = await Promise.race([first.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), 10_000)))]);
      clearTimeout(timer);
      assert.equal(alone, true, 'the first committed while the second was still open');
      assert.equal(await committed('shared-1'), true);
      assert.equal(await committed('shared-2'), false, 'the second is not committed yet');
      release();
      await last;
    }
    assert.ok((await committed('shared-1')) && (await committed('shared-2')));
  });

  test("one write's failure is its caller's alone: the others of its batch are kept", async () => {
    const results = await Promise.allSettled([
      insert('durable', 'fail-a', 1),
      batchedWrite(db, 'durable', async (trx) => {
        await trx.insertInto('batch_test' as never).values({ k: 'fail-b', v: 2 } as never).execute();
        throw new Error('this write refuses');
      }),
      insert('durable', 'fail-c', 3),
    ]);
    assert.deepEqual(
      results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)),
      [1, 'this write refuses', 3],
    );
    assert.deepEqual([await committed('fail-a'), await committed('fail-b'), await committed('fail-c')], [true, false, true]);
  });

  test('two writes of one batch that conflict: one is kept, the other gets the database error', async () => {
    const settled = await Promise.allSettled([insert('relaxed', 'dup', 1), insert('relaxed', 'dup', 2)]);
    const kept = settled.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<number>).value);
    const refused = settled.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    assert.equal(kept.length, 1);
    assert.equal(refused.length, 1);
    assert.match(String(refused[0].reason), /unique|duplicate/i);
    // SQLite runs the batch in order, so the first wins; PostgreSQL runs them side by side.
    if (testBackend() === 'sqlite') assert.deepEqual(kept, [1]);
    const rows = await sql<{ v: number }>`select v from batch_test where k = 'dup'`.execute(other.kysely);
    assert.deepEqual(rows.rows.map((r) => Number(r.v)), kept);
  });
});
