import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { validateConfig } from '../../src/config/load.js';
import type { BlobStore } from '../../src/store/ports.js';
import { migrate, openDb, type Db } from '../../src/store/db.js';
import { openBlobStore } from '../../src/store/open-blobs.js';
import { requirePeer, tempDir, testBackend } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

// docs/backup.md, run as written: the database first, the blobs second, while mail arrives.

const run = promisify(execFile);
const envelope = (i: number) => ({ mailFrom: 'a@example.net', rcptTo: [`box${i}@example.org`], ingress: 'smtp', receivedAt: new Date() });
const message = (i: number) =>
  Buffer.concat([
    Buffer.from(`Message-ID: <backup-${i}@example.net>\r\nSubject: n${i}\r\nContent-Type: application/octet-stream\r\n\r\n`),
    Buffer.from(randomBytes(3000 + i * 97).toString('base64').replace(/.{76}/g, '$&\r\n')),
    Buffer.from('\r\n'),
  ]);

async function* once(b: Buffer): AsyncGenerator<Uint8Array> {
  yield b;
}

/** Keep accepting mail until stopped; returns how many were kept. */
function keepSending(app: TestPostroom, from: number): { stop(): Promise<number> } {
  let stopping = false;
  let n = from;
  const loop = (async () => {
    while (!stopping) await app.intake.accept(envelope(n), once(message(n++)), { trace: false });
  })();
  return { stop: async () => ((stopping = true), await loop, n - from) };
}

/** Every message and part row in `db` finds its blob, and the bytes hash to what the row says. */
async function assertWhole(db: Db, blobs: BlobStore): Promise<number> {
  const rows = await db.kysely.selectFrom('messages').select(['id', 'raw_sha256', 'size']).execute();
  const parts = await db.kysely.selectFrom('parts').select(['sha256', 'size']).execute();
  for (const r of [...rows.map((m) => ({ sha256: m.raw_sha256, size: m.size })), ...parts]) {
    const hash = createHash('sha256');
    let size = 0;
    for await (const c of await blobs.open(r.sha256)) {
      hash.update(c as Buffer);
      size += (c as Buffer).length;
    }
    assert.equal(hash.digest('hex'), r.sha256);
    assert.equal(size, Number(r.size));
  }
  return rows.length;
}

test(`backup while receiving, then restore, keeps every message whole (${testBackend()})`, async (t) => {
  const postgres = testBackend() === 'postgres';
  if (postgres ? !requirePeer(t, 'pg_dump') : !requirePeer(t, 'sqlite3') || !requirePeer(t, 'rsync')) return;
  const app = await startTestPostroom({ smtp: { enabled: false }, http: { enabled: false } });
  const dest = tempDir('postroom-backup-');
  t.after(async () => {
    await app.close();
    dest.cleanup();
  });
  for (let i = 0; i < 30; i++) await app.intake.accept(envelope(i), once(message(i)), { trace: false });
  const sender = keepSending(app, 1000);
  await new Promise((r) => setTimeout(r, 100));

  let restored: Db;
  let restoredBlobs: BlobStore;
  let dropRestored = async () => {};
  if (!postgres) {
    const data = app.config.dataDir;
    await run('sqlite3', [path.join(data, 'postroom.db'), `.backup '${path.join(dest.dir, 'postroom.db')}'`]);
    await run('rsync', ['-a', '--exclude=/tmp/', `${data}/blobs/`, `${dest.dir}/blobs/`]);
    const sent = await sender.stop();
    assert.ok(sent > 0, 'mail kept arriving during the backup');
    // Restore into a fresh data directory, as the restore steps do.
    const target = tempDir('postroom-restore-');
    t.after(() => target.cleanup());
    mkdirSync(target.dir, { recursive: true });
    await run('cp', [path.join(dest.dir, 'postroom.db'), path.join(target.dir, 'postroom.db')]);
    await run('rsync', ['-a', `${dest.dir}/blobs/`, `${target.dir}/blobs/`]);
    const { stdout } = await run('sqlite3', [path.join(target.dir, 'postroom.db'), 'PRAGMA integrity_check']);
    assert.equal(stdout.trim(), 'ok');
    restored = openDb(undefined, target.dir);
    restoredBlobs = openBlobStore(validateConfig({ dataDir: target.dir }), restored);
  } else {
    const url = new URL(app.config.store.database!);
    const schema = url.searchParams.get('schema')!;
    url.searchParams.delete('schema');
    const dump = path.join(dest.dir, 'postroom.dump');
    await run('pg_dump', ['-Fc', '-n', schema, '-f', dump, url.toString()]);
    const sent = await sender.stop();
    assert.ok(sent > 0, 'mail kept arriving during the dump');
    const dbName = `restore_${randomBytes(5).toString('hex')}`;
    const admin = new pg.Client({ connectionString: url.toString() });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    dropRestored = async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await admin.end();
    };
    // Dropped even when the restore fails (an open client would keep the test process alive).
    t.after(() => dropRestored());
    const restoredUrl = new URL(url.toString());
    restoredUrl.pathname = `/${dbName}`;
    // As docs/backup.md says: the dump of one schema leaves out pg_trgm, which lives in public.
    await run('psql', ['-d', restoredUrl.toString(), '-c', 'CREATE EXTENSION IF NOT EXISTS pg_trgm']);
    await run('pg_restore', ['--no-owner', '-d', restoredUrl.toString(), dump]);
    restoredUrl.searchParams.set('schema', schema);
    restored = openDb(restoredUrl.toString(), dest.dir);
    restoredBlobs = openBlobStore(validateConfig({ dataDir: dest.dir, store: { database: restoredUrl.toString() } }), restored);
  }
  try {
    assert.deepEqual(await migrate(restored), [], 'the copy is at the current schema version');
    const kept = await assertWhole(restored, restoredBlobs);
    assert.ok(kept >= 30, `the copy has at least the mail from before the backup (${kept})`);
    const live = await app.db.kysely.selectFrom('messages').select('id').execute();
    assert.ok(kept <= live.length);
  } finally {
    await restored.close();
  }
});
