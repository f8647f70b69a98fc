import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { lockId, openLeases, PgLeases, whileLeased, type Leases } from '../../src/store/leases.js';
import { testBackend, waitFor } from '../helpers/env.js';
import { openTestDb, type TestDb } from '../helpers/test-db.js';

const here = path.dirname(new URL(import.meta.url).pathname);
const onlyPg = 'needs the postgres backend: on SQLite there is one node, and leases are in-process';

describe(`mailbox-poll leases (${testBackend()})`, () => {
  let db: TestDb;
  let nodeA: Leases;
  /** Another node on PostgreSQL (its own connection); on SQLite the one node there is. */
  let nodeB: Leases;
  before(async () => {
    db = await openTestDb();
    nodeA = openLeases(db, { checkMs: 200 });
    nodeB = db.dialect === 'postgres' ? openLeases(db, { checkMs: 200 }) : nodeA;
  });
  after(async () => {
    await nodeA.close();
    await nodeB.close();
    await db.cleanup();
  });

  test('a held lease is refused to anyone else until it is released', async () => {
    const lease = await nodeA.tryAcquire('imap:acct-1/INBOX');
    assert.ok(lease);
    assert.equal(await nodeB.tryAcquire('imap:acct-1/INBOX'), undefined);
    assert.equal(await nodeA.tryAcquire('imap:acct-1/INBOX'), undefined, 'not re-entrant on the holder either');
    const other = await nodeB.tryAcquire('imap:acct-2/INBOX');
    assert.ok(other, 'another key is independent');
    await lease.release();
    assert.equal(lease.signal.aborted, true);
    const taken = await nodeB.tryAcquire('imap:acct-1/INBOX');
    assert.ok(taken);
    await taken.release();
    await other.release();
  });

  test('work runs on one node at a time and moves over when its holder stops', async () => {
    const running: string[] = [];
    let max = 0;
    const work = (name: string) => async (signal: AbortSignal) => {
      running.push(name);
      max = Math.max(max, running.length);
      await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
      running.splice(running.indexOf(name), 1);
    };
    const a = whileLeased(nodeA, 'pop3:acct-9', work('a'), { retryMs: 50 });
    await waitFor(() => running.length === 1, 'a holder');
    const b = whileLeased(nodeB, 'pop3:acct-9', work('b'), { retryMs: 50 });
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(running, ['a']);
    await a.stop();
    await waitFor(() => running[0] === 'b', 'the second node to take over');
    await b.stop();
    assert.equal(max, 1, 'never two holders at once');
  });

  test('a node killed with SIGKILL loses its lease; another takes it over', async (t) => {
    if (db.dialect !== 'postgres') return t.skip(onlyPg);
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, '../helpers/lease-holder.ts'), db.url, 'imap:acct-3/INBOX'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [first] = (await once(child.stdout!, 'data')) as [Buffer];
    assert.equal(first.toString().trim(), 'held');
    assert.equal(await nodeA.tryAcquire('imap:acct-3/INBOX'), undefined, 'held by the child');
    child.kill('SIGKILL');
    await once(child, 'exit');
    // The kernel closes the dead process's socket; the server ends its session and frees the lock.
    const lease = await waitFor(() => nodeA.tryAcquire('imap:acct-3/INBOX'), 'take-over after SIGKILL', 10_000);
    await lease.release();
  });

  test('a lease whose connection the server ends is reported lost (signal aborted)', async (t) => {
    if (db.dialect !== 'postgres') return t.skip(onlyPg);
    const lost: string[] = [];
    const node = new PgLeases(db.pg!, { checkMs: 100, onLost: (keys) => lost.push(...keys) });
    try {
      const lease = await node.tryAcquire('imap:acct-4/INBOX');
      assert.ok(lease);
      // Terminate the lease connection from the server side, as a failover or an admin would.
      // End exactly the session holding this lock, from the server side, as a failover or an admin would.
      const u = BigInt.asUintN(64, lockId(db.pg!.schema ?? 'public', 'imap:acct-4/INBOX'));
      const ended = await sql<{ ok: boolean }>`
        select pg_terminate_backend(pid) as ok from pg_locks
         where locktype = 'advisory' and objsubid = 1 and granted
           and classid = ${String(u >> 32n)}::oid and objid = ${String(u & 0xffffffffn)}::oid`.execute(db.kysely);
      assert.deepEqual(ended.rows.map((r) => r.ok), [true]);
      await waitFor(() => lease.signal.aborted, 'the lease signal to abort', 5_000);
      assert.deepEqual(lost, ['imap:acct-4/INBOX']);
      const again = await waitFor(() => nodeB.tryAcquire('imap:acct-4/INBOX'), 'another node to take it', 5_000);
      await again.release();
    } finally {
      await node.close();
    }
  });
});
