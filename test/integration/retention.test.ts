import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { createGroup } from '../../src/domain/groups/store.js';
import { createPost } from '../../src/domain/groups/posts.js';
import { openDb } from '../../src/store/db.js';
import { LocalLeases, openLeases } from '../../src/store/leases.js';
import { setPinned } from '../../src/store/messages.js';
import type { BlobStore } from '../../src/store/ports.js';
import { Retention } from '../../src/store/retention.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { testBackend } from '../helpers/env.js';
import { DAY, rig, type Kept } from '../helpers/retention.js';
import type { TestDb } from '../helpers/test-db.js';

async function hasBlob(blobs: BlobStore, sha256: string): Promise<boolean> {
  return blobs.has(sha256);
}

for (const kind of ['fs', 'db'] as const) {
  describe(`retention (${testBackend()}, ${kind} blobs)`, () => {
    let r: Awaited<ReturnType<typeof rig>>;
    let db: TestDb;
    before(async () => {
      r = await rig(kind);
      db = r.db;
    });
    after(() => db.cleanup());
    const wipe = async () => {
      await db.kysely.deleteFrom('group_posts').execute();
      await db.kysely.deleteFrom('messages').execute();
    };

    it('maxAge: a dry run lists what would go and changes nothing; the purge then removes exactly that, rows and blobs', async () => {
      await wipe();
      // Past the file store's inline limit (128 KiB): a file of its own under blobs/.
      const old = await r.keep({ ageMs: 40 * DAY, routes: { hooks: 'done' }, size: 200 * 1024 });
      const file = path.join(db.dir, 'blobs', old.sha256.slice(0, 2), old.sha256);
      if (kind === 'fs') assert.ok((await stat(file)).size > 200 * 1024);
      const dead = await r.keep({ ageMs: 35 * DAY, routes: { hooks: 'dead' } });
      const unrouted = await r.keep({ ageMs: 31 * DAY });
      const young = await r.keep({ ageMs: 2 * DAY, routes: { hooks: 'done' } });
      const ret = r.retention({ defaults: { maxAge: 30 * DAY } });
      const dry = await ret.purge({ dryRun: true });
      assert.equal(dry.messages, 3);
      assert.deepEqual(Object.keys(dry.routes).sort(), ['', 'hooks']);
      assert.equal(dry.routes.hooks.messages, 2);
      assert.equal(dry.routes[''].messages, 1);
      assert.ok(dry.oldest! < dry.newest!);
      assert.ok(dry.bytes > 200 * 1024);
      assert.equal((await r.ids()).size, 4, 'a dry run removes nothing');
      assert.ok(await hasBlob(r.blobs, old.sha256));
      const done = await ret.purge();
      assert.equal(done.messages, 3);
      assert.equal(done.bytes, dry.bytes);
      assert.deepEqual([...(await r.ids())], [young.id]);
      for (const m of [old, dead, unrouted]) assert.equal(await hasBlob(r.blobs, m.sha256), false, `blob of ${m.id} gone`);
      assert.ok(await hasBlob(r.blobs, young.sha256));
      assert.ok(done.blobBytesFreed >= done.bytes);
      assert.ok(done.blobsRemoved >= 3);
      if (kind === 'fs') {
        // The file store: the file itself is gone from disk.
        await assert.rejects(stat(file), { code: 'ENOENT' });
      } else {
        const left = await db.kysely.selectFrom('blob_chunks').select('sha256').where('sha256', 'in', [old.sha256, dead.sha256]).execute();
        assert.deepEqual(left, []);
      }
    });

    it('maxMessages keeps the newest N; maxBytes keeps the newest that fit', async () => {
      await wipe();
      const ms: Kept[] = [];
      for (let i = 0; i < 6; i++) ms.push(await r.keep({ ageMs: (10 - i) * 3_600_000, routes: { hooks: 'done' }, size: 1000 }));
      assert.equal((await r.retention({ defaults: { maxMessages: 4 } }).purge()).messages, 2);
      assert.deepEqual([...(await r.ids())].sort(), ms.slice(2).map((m) => m.id).sort());
      // Each raw is a little over 1000 bytes: 2500 bytes hold the newest two.
      assert.equal((await r.retention({ defaults: { maxBytes: 2500 } }).purge()).messages, 2);
      assert.deepEqual([...(await r.ids())].sort(), ms.slice(4).map((m) => m.id).sort());
    });

    it('unfinished deliveries, unparsed or unplanned messages, pinned messages and held posts are kept', async () => {
      await wipe();
      const pending = await r.keep({ ageMs: 90 * DAY, routes: { hooks: 'pending' } });
      const half = await r.keep({ ageMs: 90 * DAY, routes: { hooks: 'done', other: 'pending' } });
      const unparsed = await r.keep({ ageMs: 90 * DAY, parsed: false });
      const unplanned = await r.keep({ ageMs: 90 * DAY });
      await db.kysely.updateTable('messages').set({ error: null }).where('id', '=', unplanned.id).execute();
      const pinned = await r.keep({ ageMs: 90 * DAY, routes: { hooks: 'done' } });
      assert.ok((await setPinned(db.kysely, pinned.id, true))?.pinnedAt);
      const held = await r.keep({ ageMs: 90 * DAY, routes: { groups: 'done' } });
      const group = await createGroup(db, { name: `g-${kind}`, address: `g-${kind}-${randomBytes(3).toString('hex')}@lists.test`, posting: 'moderated', replyTo: 'group' });
      const post = await createPost(db, { group: group.id, message: held.id, delivery: `${held.id}-0`, messageId: null, inReplyTo: [], references: [], subject: 's', author: null, status: 'held', postedAt: new Date().toISOString() });
      const failed = await r.keep({ ageMs: 90 * DAY, routes: { hooks: 'failed' } });
      const ret = r.retention({ defaults: { maxAge: DAY } });
      const got = await ret.purge();
      assert.equal(got.messages, 1, 'only the message whose delivery failed for good');
      const left = await r.ids();
      for (const m of [pending, half, unparsed, unplanned, pinned, held]) assert.ok(left.has(m.id), `${m.id} kept`);
      assert.equal(left.has(failed.id), false);
      // Unpinned and the post rejected: both may go now; the post keeps its own copy.
      await setPinned(db.kysely, pinned.id, false);
      await db.kysely.updateTable('group_posts').set({ status: 'rejected' }).where('id', '=', post.id).execute();
      assert.equal((await ret.purge()).messages, 2);
      assert.equal((await r.ids()).has(held.id), false);
      assert.equal(await hasBlob(r.blobs, held.sha256), true, "the post's own reference keeps the raw bytes");
      const row = await db.kysely.selectFrom('group_posts').select('raw_sha256').where('id', '=', post.id).executeTakeFirstOrThrow();
      assert.equal(row.raw_sha256, held.sha256);
    });

    it("a route's own retention overrides the default; a message of two routes goes only when both let it", async () => {
      await wipe();
      const forever = await r.keep({ ageMs: 60 * DAY, routes: { archive: 'done' } });
      const shortOld = await r.keep({ ageMs: 2 * 3_600_000, routes: { short: 'done' } });
      const shortNew = await r.keep({ ageMs: 10 * 60_000, routes: { short: 'done' } });
      const plainOld = await r.keep({ ageMs: 2 * 3_600_000, routes: { hooks: 'done' } });
      const plainOlder = await r.keep({ ageMs: 40 * DAY, routes: { hooks: 'done' } });
      const both = await r.keep({ ageMs: 40 * DAY, routes: { archive: 'done', hooks: 'done' } });
      const shortCapped: Kept[] = [];
      for (let i = 0; i < 3; i++) shortCapped.push(await r.keep({ ageMs: (50 - i) * 60_000, routes: { capped: 'done' } }));
      const ret = r.retention({
        defaults: { maxAge: 30 * DAY },
        // archive: 0 turns the default's age limit off; short: its own, shorter; capped: a count, the default's age still applies.
        routes: { archive: { maxAge: 0 }, short: { maxAge: 3_600_000 }, capped: { maxMessages: 1 } },
      });
      const dry = await ret.purge({ dryRun: true });
      assert.equal(dry.messages, 4);
      assert.deepEqual(Object.fromEntries(Object.entries(dry.routes).map(([k, v]) => [k, v.messages])), { short: 1, hooks: 1, capped: 2 });
      await ret.purge();
      const left = await r.ids();
      for (const m of [forever, shortNew, plainOld, both, shortCapped[2]]) assert.ok(left.has(m.id), `${m.id} kept`);
      for (const m of [shortOld, plainOlder, shortCapped[0], shortCapped[1]]) assert.equal(left.has(m.id), false, `${m.id} removed`);
    });

    it('counts removals and freed bytes in the metrics, and the last run time', async () => {
      await wipe();
      await r.keep({ ageMs: 40 * DAY, routes: { hooks: 'done' }, size: 5000 });
      const metrics = createMetrics();
      const ret = new Retention({ db, blobs: r.blobs, leases: new LocalLeases(), policy: { defaults: { maxAge: DAY }, routes: {} }, batchSize: 10, graceMs: 0, metrics });
      await ret.purge();
      const text = await metrics.registry.metrics();
      assert.match(text, /^postroom_retention_removed_total\{kind="message"\} 1$/m);
      assert.match(text, /^postroom_retention_removed_total\{kind="blob"\} [1-9]/m);
      const freed = Number(/^postroom_retention_freed_bytes_total (\d+)$/m.exec(text)?.[1]);
      assert.ok(freed >= 5000, `freed ${freed}`);
      assert.match(text, /^postroom_retention_last_run_timestamp_seconds \d{10}/m);
    });
  });
}

describe(`retention on ${testBackend()}: batches, leases, space`, () => {
  it('removes in batches of batchSize until nothing is left', async () => {
    const r = await rig('db');
    try {
      for (let i = 0; i < 23; i++) await r.keep({ ageMs: 40 * DAY, routes: { hooks: 'done' } });
      const kept = await r.keep({ ageMs: 0, routes: { hooks: 'done' } });
      const got = await r.retention({ defaults: { maxAge: DAY } }, { batchSize: 5 }).purge();
      assert.equal(got.messages, 23);
      assert.deepEqual([...(await r.ids())], [kept.id]);
    } finally {
      await r.db.cleanup();
    }
  });

  it('two nodes purging at once remove each message once, and neither waits on the other for ever', { skip: testBackend() !== 'postgres' && 'PostgreSQL: several nodes' }, async () => {
    const r = await rig('db');
    const other = openDb(r.db.url, r.db.dir, { poolSize: 2 });
    try {
      for (let i = 0; i < 60; i++) await r.keep({ ageMs: 40 * DAY, routes: { hooks: 'done' } });
      const policy = { defaults: { maxAge: DAY } };
      const a = r.retention(policy, { batchSize: 7, leases: openLeases(r.db) });
      const b = r.retention(policy, { db: other, batchSize: 7, leases: openLeases(other) });
      const reports = await Promise.all([a.purge(), b.purge(), a.purge(), b.purge()]);
      await Promise.all([a.close(), b.close()]);
      const removed = reports.reduce((n, x) => n + x.messages, 0);
      assert.equal(removed, 60, `each message counted once: ${reports.map((x) => `${x.messages}${x.skipped ? ' (skipped)' : ''}`).join(', ')}`);
      assert.equal((await r.ids()).size, 0);
      // Without the lease (each node's own in-process leases) the deletes still count each row once.
      for (let i = 0; i < 40; i++) await r.keep({ ageMs: 40 * DAY, routes: { hooks: 'done' } });
      const c = r.retention(policy, { batchSize: 3 });
      const d = r.retention(policy, { db: other, batchSize: 3 });
      const unleased = await Promise.all([c.purge(), d.purge()]);
      assert.equal(unleased[0].messages + unleased[1].messages, 40);
      assert.equal((await r.ids()).size, 0);
    } finally {
      await other.close();
      await r.db.cleanup();
    }
  });

  it('SQLite gives the space back: the database has fewer pages after a purge', { skip: testBackend() !== 'sqlite' && 'SQLite file' }, async () => {
    const r = await rig('db');
    try {
      const mode = await sql<{ auto_vacuum: number }>`PRAGMA auto_vacuum`.execute(r.db.kysely);
      assert.equal(Number(mode.rows[0].auto_vacuum), 2, 'a new database is made with incremental auto-vacuum');
      for (let i = 0; i < 40; i++) await r.keep({ ageMs: 40 * DAY, routes: { hooks: 'done' }, size: 64 * 1024 });
      const pages = async () => Number((await sql<{ page_count: number }>`PRAGMA page_count`.execute(r.db.kysely)).rows[0].page_count);
      const before = await pages();
      const got = await r.retention({ defaults: { maxAge: DAY } }).purge();
      assert.equal(got.messages, 40);
      const afterPages = await pages();
      assert.ok(afterPages < before / 2, `pages ${before} → ${afterPages}`);
      assert.ok(got.pagesFreed > 0);
      const free = Number((await sql<{ freelist_count: number }>`PRAGMA freelist_count`.execute(r.db.kysely)).rows[0].freelist_count);
      assert.equal(free, 0);
    } finally {
      await r.db.cleanup();
    }
  });
});
