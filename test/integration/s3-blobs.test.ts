import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { S3BlobStore } from '../../src/store/s3-blobs.js';
import { DbBlobStore } from '../../src/store/pg-blobs.js';
import { FsBlobStore, INLINE_LIMIT } from '../../src/store/blobs.js';
import type { BlobStore } from '../../src/store/ports.js';
import { memoryWatch, requirePeer, tempDir, waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { s3rverSkip, startS3rver, useS3rverCredentials, type S3rver } from '../helpers/s3rver.js';
import { RawSmtp, swaks } from '../helpers/swaks.js';
import { readdirSync } from 'node:fs';

const MiB = 1024 * 1024;

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

async function readAll(s: AsyncIterable<unknown>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of s) out.push(c as Buffer);
  return Buffer.concat(out);
}

/** A message of about `size` bytes: headers, then base64-looking lines of random bytes (CRLF). */
function messageOf(size: number, id: string): Buffer {
  const head = `From: s3@example.org\r\nTo: r@example.org\r\nSubject: object storage ${id}\r\nMessage-ID: <${id}@example.org>\r\n\r\n`;
  const lines: string[] = [];
  let n = head.length;
  while (n < size) {
    const l = randomBytes(57).toString('base64');
    lines.push(l);
    n += l.length + 2;
  }
  return Buffer.from(`${head}${lines.join('\r\n')}\r\n`);
}

describe('blobs on object storage (s3rver)', { skip: s3rverSkip('blobs on object storage') }, () => {
  let s3: S3rver;
  let app: TestPostroom;
  let store: S3BlobStore;

  before(async () => {
    useS3rverCredentials();
    s3 = await startS3rver();
    app = await startTestPostroom({ store: { blobs: 's3', s3: s3.storeConfig('pr') } });
    assert.ok(app.blobs instanceof S3BlobStore);
    store = app.blobs;
  });
  after(async () => {
    await app?.close();
    await s3?.stop();
  });

  const rowOf = (subject: string) =>
    waitFor(
      () => app.db.kysely.selectFrom('messages').select(['id', 'raw_sha256', 'size']).where('subject', '=', subject).executeTakeFirst(),
      `message "${subject}"`,
      60_000,
    );

  test('swaks-s3rver: a message sent over SMTP is kept in the bucket and downloads byte-exact, whole and as a Range', { timeout: 120_000 }, async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const msg = messageOf(3 * MiB, 'big1');
    const file = path.join(tmp.dir, 'm.eml');
    // swaks ends the data with CRLF . CRLF after the file's last byte: the file leaves out the
    // message's final CRLF, which that sequence supplies (RFC 5321 §4.1.1.4).
    writeFileSync(file, msg.subarray(0, -2));
    const run = await swaks(app.smtpPort, ['--from', 's3@example.org', '--to', 'r@example.org', '--data', file], 60_000);
    assert.equal(run.code, 0, run.out);
    const row = await rowOf('object storage big1');
    assert.equal(row.raw_sha256, sha(msg));
    // In the bucket under its content address, with its size (larger than the inline limit).
    const head = await (await store.client()).send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `pr/${row.raw_sha256.slice(0, 2)}/${row.raw_sha256.slice(2, 4)}/${row.raw_sha256}` }));
    assert.equal(head.ContentLength, msg.length);

    const whole = await app.api(`/api/v1/messages/${row.id}/raw?trace=0`);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('accept-ranges'), 'bytes');
    assert.equal(sha(Buffer.from(await whole.arrayBuffer())), row.raw_sha256);

    const part = await app.api(`/api/v1/messages/${row.id}/raw?trace=0`, { headers: { range: 'bytes=1048570-2097160' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 1048570-2097160/${msg.length}`);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(msg.subarray(1048570, 2097161)));

    const tail = await app.api(`/api/v1/messages/${row.id}/raw?trace=0`, { headers: { range: 'bytes=-100' } });
    assert.equal(tail.status, 206);
    assert.ok(Buffer.from(await tail.arrayBuffer()).equals(msg.subarray(msg.length - 100)));

    const past = await app.api(`/api/v1/messages/${row.id}/raw?trace=0`, { headers: { range: `bytes=${msg.length}-` } });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get('content-range'), `bytes */${msg.length}`);
  });

  test('swaks-s3rver: a small message stays in the database, no object is written for it', { timeout: 60_000 }, async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const run = await swaks(app.smtpPort, ['--from', 's3@example.org', '--to', 'r@example.org', '--header', 'Subject: object storage small', '--body', 'tiny']);
    assert.equal(run.code, 0, run.out);
    const row = await rowOf('object storage small');
    assert.ok(row.size <= INLINE_LIMIT);
    assert.equal(await store.hasObject(row.raw_sha256), false);
    assert.equal(await store.has(row.raw_sha256), true);
    const res = await app.api(`/api/v1/messages/${row.id}/raw?trace=0`);
    assert.equal(sha(Buffer.from(await res.arrayBuffer())), row.raw_sha256);
  });

  test('every store reads exactly the bytes of a range, across chunk and part boundaries', { timeout: 120_000 }, async (t) => {
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const bytes = randomBytes(3 * MiB + 12345);
    const stores: [string, BlobStore][] = [
      ['s3', store],
      ['db', new DbBlobStore(app.db.kysely, path.join(tmp.dir, 'staging'))],
      ['fs', new FsBlobStore(path.join(tmp.dir, 'blobs'))],
    ];
    const ranges = [
      [0, 0],
      [0, bytes.length - 1],
      [MiB - 1, MiB],
      [MiB, 2 * MiB - 1],
      [5, 3 * MiB + 100],
      [bytes.length - 1, bytes.length - 1],
    ];
    for (const [name, s] of stores) {
      const staged = await s.stage([bytes]);
      const rest = await s.settle([staged]);
      await s.commit(rest, app.db.kysely);
      assert.equal(await readAll(await s.open(staged.sha256)).then(sha), staged.sha256, name);
      for (const [start, end] of ranges) {
        const got = await readAll(await s.open(staged.sha256, { start, end }));
        assert.ok(got.equals(bytes.subarray(start, end + 1)), `${name} ${start}-${end}: ${got.length} bytes, expected ${end - start + 1}`);
      }
    }
  });

  test('the orphan sweep removes only unreferenced objects older than the grace period', { timeout: 120_000 }, async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const file = path.join(tmp.dir, 'm.eml');
    writeFileSync(file, messageOf(300 * 1024, 'kept'));
    assert.equal((await swaks(app.smtpPort, ['--from', 's3@example.org', '--to', 'r@example.org', '--data', file])).code, 0);
    const kept = await rowOf('object storage kept');
    // An orphan: uploaded, but its row never committed (a failed transaction, a killed process).
    const orphan = await store.stage([randomBytes(INLINE_LIMIT + 1)]);
    await store.settle([orphan]);
    // Not ours: other keys in the bucket, in and out of the prefix, are never touched.
    await (await store.client()).send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'pr/notes.txt', Body: 'x' }));
    await (await store.client()).send(new PutObjectCommand({ Bucket: s3.bucket, Key: `other/${orphan.sha256}`, Body: 'x' }));

    const young = await store.sweep({ graceMs: 3_600_000, db: app.db.kysely });
    assert.equal(young.blobs, 0);
    assert.equal(await store.hasObject(orphan.sha256), true);

    // S3 keeps LastModified to the second: wait until the orphan is older than "now - 0".
    await waitFor(async () => (await store.sweep({ graceMs: 0, db: app.db.kysely })).blobs > 0, 'the sweep to remove the orphan', 30_000);
    assert.equal(await store.hasObject(orphan.sha256), false);
    assert.equal(await store.hasObject(kept.raw_sha256), true);
    for (const Key of ['pr/notes.txt', `other/${orphan.sha256}`]) {
      await (await store.client()).send(new HeadObjectCommand({ Bucket: s3.bucket, Key }));
    }
    const res = await app.api(`/api/v1/messages/${kept.id}/raw?trace=0`);
    assert.equal(sha(Buffer.from(await res.arrayBuffer())), kept.raw_sha256);
  });

  test('raw-smtp-s3rver: the S3 server killed mid-upload: 451 4.3.0, no row, and mail is taken again once it is back', { timeout: 180_000 }, async () => {
    const msg = messageOf(60 * MiB, 'killed');
    const c = await RawSmtp.connect(app.smtpPort);
    try {
      assert.match(await c.reply(), /^220/);
      for (const cmd of ['EHLO peer.example.org', 'MAIL FROM:<s3@example.org>', 'RCPT TO:<r@example.org>', 'DATA']) {
        c.socket.write(`${cmd}\r\n`);
        const r = await c.reply();
        assert.match(r, /^(250|354)/, `${cmd}: ${r}`);
      }
      c.socket.write(msg);
      c.socket.write('.\r\n');
      // The upload has begun once s3rver has written any of it: kill it then.
      const before = listFiles(s3.dir);
      await waitFor(() => listFiles(s3.dir).some((f) => !before.includes(f)), 's3rver to receive the first part', 120_000);
      await s3.kill();
      const reply = await c.reply(120_000);
      assert.match(reply, /^451 4\.3\.0 .*object storage is unreachable/, reply);
    } finally {
      c.socket.destroy();
    }
    const rows = await app.db.kysely.selectFrom('messages').select('id').where('subject', '=', 'object storage killed').execute();
    assert.deepEqual(rows, []);

    await s3.restart();
    const again = await RawSmtp.connect(app.smtpPort);
    try {
      assert.match(await again.reply(), /^220/);
      const small = messageOf(200 * 1024, 'after');
      for (const cmd of ['EHLO peer.example.org', 'MAIL FROM:<s3@example.org>', 'RCPT TO:<r@example.org>', 'DATA']) {
        again.socket.write(`${cmd}\r\n`);
        await again.reply();
      }
      again.socket.write(small);
      again.socket.write('.\r\n');
      assert.match(await again.reply(60_000), /^250/);
      const row = await rowOf('object storage after');
      assert.equal(row.raw_sha256, sha(small));
      assert.equal(await store.hasObject(row.raw_sha256, small.length), true);
    } finally {
      again.socket.destroy();
    }
  });

  test('a 200 MiB message is uploaded in parts from its staging file, in bounded memory, and reads back byte-exact', { timeout: 600_000 }, async () => {
    const total = 200 * MiB;
    const block = randomBytes(57 * 862);
    const hash = createHash('sha256');
    let size = 0;
    async function* gen(): AsyncGenerator<Buffer> {
      const head = Buffer.from('From: big@example.org\r\nTo: r@example.org\r\nSubject: object storage 200\r\nMessage-ID: <s3big@example.org>\r\n\r\n');
      hash.update(head);
      size += head.length;
      yield head;
      for (let n = 0; size < total; n++) {
        const piece = Buffer.from(block);
        piece.writeUInt32BE(n, 0);
        const out = Buffer.from(`${piece.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`);
        hash.update(out);
        size += out.length;
        yield out;
      }
    }
    const mem = memoryWatch();
    let rss = process.memoryUsage().rss;
    const rss0 = rss;
    const rssTimer = setInterval(() => (rss = Math.max(rss, process.memoryUsage().rss)), 10);
    try {
      const stored = await app.intake.accept({ mailFrom: 'big@example.org', rcptTo: ['r@example.org'], ingress: 'smtp', receivedAt: new Date() }, gen(), {
        maxSize: 250 * MiB,
      });
      const peak = mem.peak();
      console.log(`# 200 MiB message to S3: heap + buffers rose ${(peak / MiB).toFixed(1)} MiB, RSS rose ${((rss - rss0) / MiB).toFixed(1)} MiB (peak RSS ${(rss / MiB).toFixed(0)} MiB)`);
      // Held whole it would add 200 MiB at least; streamed it holds two 8 MiB parts and chunks in flight.
      assert.ok(peak < 200 * MiB, `keeping raised memory by ${(peak / MiB).toFixed(1)} MiB`);
      assert.ok(rss - rss0 < 200 * MiB, `keeping raised RSS by ${((rss - rss0) / MiB).toFixed(1)} MiB`);
      assert.equal(stored.size, size);
      assert.equal(stored.rawSha256, hash.digest('hex'));
      assert.equal(await store.hasObject(stored.rawSha256, size), true);
      const back = createHash('sha256');
      for await (const c of await store.open(stored.rawSha256)) back.update(c as Buffer);
      assert.equal(back.digest('hex'), stored.rawSha256);
    } finally {
      clearInterval(rssTimer);
      mem.stop();
    }
  });
});

/** Every file under `dir`, relative. */
function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String);
}
