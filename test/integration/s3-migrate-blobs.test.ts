import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FsBlobStore, INLINE_LIMIT } from '../../src/store/blobs.js';
import { S3BlobStore } from '../../src/store/s3-blobs.js';
import { DbBlobStore } from '../../src/store/pg-blobs.js';
import { cleanEnv } from '../helpers/serve-child.js';
import { waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { s3rverSkip, S3RVER_CREDENTIALS, startS3rver, useS3rverCredentials, type S3rver } from '../helpers/s3rver.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/postroom.js');
const MESSAGES = 60;

async function hashOf(s: AsyncIterable<unknown>): Promise<string> {
  const h = createHash('sha256');
  for await (const c of s) h.update(c as Buffer);
  return h.digest('hex');
}

describe('postroom migrate-blobs between files and object storage (s3rver)', { skip: s3rverSkip('migrate-blobs') }, () => {
  let s3: S3rver;
  let app: TestPostroom;
  let configFile: string;
  const writeConfig = (blobs: 'fs' | 's3') =>
    writeFileSync(
      configFile,
      JSON.stringify({
        dataDir: app.dir,
        log: { level: 'silent' },
        store: { ...(app.config.store.database ? { database: app.config.store.database } : {}), blobs, s3: s3.storeConfig('mig') },
      }),
    );
  const run = (args: string[]) =>
    spawnSync(process.execPath, [bin, 'migrate-blobs', ...args, '--config', configFile], { env: cleanEnv(S3RVER_CREDENTIALS), encoding: 'utf8', timeout: 300_000 });

  before(async () => {
    useS3rverCredentials();
    s3 = await startS3rver();
    app = await startTestPostroom({ store: { blobs: 'fs' }, smtp: { enabled: false }, http: { enabled: false } });
    configFile = path.join(app.dir, 'postroom.yaml');
    for (let i = 0; i < MESSAGES; i++) {
      // Large ones (a file each, then an object each) and small ones (in the database for both stores).
      const body = i % 4 === 3 ? 'small\r\n' : `${randomBytes(300 * 1024).toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`;
      const raw = Buffer.from(`From: m@example.org\r\nTo: r@example.org\r\nSubject: migrate ${i}\r\nMessage-ID: <mig${i}@example.org>\r\n\r\n${body}`);
      await app.intake.accept({ mailFrom: 'm@example.org', rcptTo: ['r@example.org'], ingress: 'smtp', receivedAt: new Date() }, [raw]);
    }
    await app.parser.idle();
  });
  after(async () => {
    await app?.close();
    await s3?.stop();
  });

  /** Every blob a message or part row names, with its size. */
  const blobsNamed = async () => {
    const k = app.db.kysely;
    const raws = await k.selectFrom('messages').select(['raw_sha256 as sha256', 'size']).execute();
    const parts = await k.selectFrom('parts').select(['sha256', 'size']).execute();
    return [...new Map([...raws, ...parts].map((b) => [b.sha256, Number(b.size)])).entries()];
  };

  test('fs → s3, killed midway and run again, then back to fs: every blob verified where it is kept', { timeout: 600_000 }, async () => {
    const named = await blobsNamed();
    const large = named.filter(([, size]) => size > INLINE_LIMIT);
    assert.ok(large.length >= MESSAGES, `${large.length} large blobs`);
    const fsStore = new FsBlobStore(path.join(app.dir, 'blobs'));
    for (const [sha] of large) assert.ok(await fsStore.hasFile(sha));

    writeConfig('fs');
    const cursor = path.join(app.dir, 'migrate-blobs-to-s3.cursor');
    const child = spawn(process.execPath, [bin, 'migrate-blobs', '--to', 's3', '--config', configFile], { env: cleanEnv(S3RVER_CREDENTIALS), stdio: 'ignore' });
    let exited = false;
    child.once('exit', () => (exited = true));
    await waitFor(() => existsSync(cursor) || exited, 'the first copy', 120_000);
    assert.equal(exited, false, 'the migration ended before it could be killed');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok(existsSync(cursor), 'the cursor survives the kill');

    const s3Store = new S3BlobStore(s3.storeConfig('mig'), path.join(app.dir, 'staging'), { store: new DbBlobStore(app.db.kysely, ''), limit: INLINE_LIMIT });
    const second = run(['--to', 's3']);
    assert.equal(second.status, 0, second.stderr);
    // Resumed: this run copied fewer blobs than there are (those before the cursor were done).
    const copied = Number(/(\d+) copied/.exec(second.stderr)?.[1]);
    assert.ok(copied < large.length, second.stderr);
    assert.match(second.stdout, /set store\.blobs: s3/);
    assert.equal(existsSync(cursor), false);
    for (const [sha, size] of large) {
      assert.ok(await s3Store.hasObject(sha, size), `object ${sha}`);
      assert.equal(await hashOf(await s3Store.openObject(sha)), sha);
    }

    // The files gone, the config on s3, and back: every large blob is a file again.
    rmSync(path.join(app.dir, 'blobs'), { recursive: true, force: true });
    writeConfig('s3');
    const back = run(['--to', 'fs']);
    assert.equal(back.status, 0, back.stderr);
    for (const [sha] of large) {
      assert.ok(await fsStore.hasFile(sha), `file ${sha}`);
      assert.equal(await hashOf(createReadStream(fsStore.pathOf(sha))), sha);
    }
    // Small blobs never left the database.
    for (const [sha] of named.filter(([, size]) => size <= INLINE_LIMIT)) assert.ok(await new DbBlobStore(app.db.kysely, '').has(sha));

    writeConfig('fs');
    const same = run(['--to', 'fs']);
    assert.equal(same.status, 64);
    assert.match(same.stderr, /store\.blobs is fs already|already/);
  });
});
