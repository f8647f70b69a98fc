import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { validateConfig } from '../../src/config/load.js';
import { toSmtpReply } from '../../src/core/errors.js';
import type { Envelope } from '../../src/core/message.js';
import { newId } from '../../src/core/ids.js';
import { Intake } from '../../src/intake/accept.js';
import { FsBlobStore } from '../../src/store/blobs.js';
import { openDb } from '../../src/store/db.js';
import { migrations } from '../../src/store/migrations/index.js';
import {
  getMessage,
  getParsedDetail,
  getParts,
  insertMessages,
  listMessages,
  newMessageRow,
  saveParsed,
} from '../../src/store/messages.js';
import { openBlobStore } from '../../src/store/open-blobs.js';
import { DbBlobStore } from '../../src/store/pg-blobs.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { tempDir, testBackend } from '../helpers/env.js';
import { cleanEnv } from '../helpers/serve-child.js';
import { openTestDb, pgTestSchema, type TestDb } from '../helpers/test-db.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const log = pino({ level: 'silent' });
const env = (rcptTo: string[], at = '2026-11-21T06:00:00Z'): Envelope => ({
  mailFrom: 'Sender@Example.NET',
  rcptTo,
  ingress: 'smtp',
  receivedAt: new Date(at),
});
const head = (messageId: string | null, subject: string | null) => ({ messageId, subject, from: 'Ann <ann@example.net>', date: null });
const blob = (n: number) => ({ sha256: n.toString(16).padStart(64, '0'), size: 4096 + n });

async function* bytes(s: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(s);
}

describe(`messages on ${testBackend()}`, () => {
  let db: TestDb;
  before(async () => {
    db = await openTestDb();
  });
  after(() => db.cleanup());

  test('inserted rows come back with their types: sizes as numbers, recipients as arrays', async () => {
    const row = newMessageRow(newId(), env(['a@x.test', 'b@x.test']), blob(1), head('<t1@x>', 'Grüße, ☃'), 'Received: x\r\n');
    const [stored] = await insertMessages(db.kysely, [row]);
    assert.equal(stored.duplicate, undefined);
    const got = await getMessage(db.kysely, row.id);
    assert.ok(got);
    assert.equal(got.size, 4097);
    assert.equal(typeof got.size, 'number');
    assert.deepEqual(got.rcptTo, ['a@x.test', 'b@x.test']);
    assert.equal(got.subject, 'Grüße, ☃');
    assert.equal(got.receivedAt, '2026-11-21T06:00:00.000Z');
    assert.equal(got.trace, 'Received: x\r\n');
  });

  test('a retransmission is kept once, within one batch and across batches', async () => {
    const a = newMessageRow(newId(), env(['a@x.test']), blob(2), head('<dup@x>', 'dup'), null);
    const b = newMessageRow(newId(), env(['A@x.test']), blob(2), head('<dup@x>', 'dup'), null);
    const [sa, sb] = await insertMessages(db.kysely, [a, b]);
    assert.equal(sa.id, a.id);
    assert.equal(sb.id, a.id);
    assert.equal(sb.duplicate, true);
    const c = newMessageRow(newId(), env(['a@x.test']), blob(2), head('<dup@x>', 'dup'), null);
    const [sc] = await db.kysely.transaction().execute((trx) => insertMessages(trx, [c]));
    assert.equal(sc.id, a.id);
    assert.equal(sc.duplicate, true);
    const n = await db.kysely.selectFrom('messages').select('id').where('message_id', '=', '<dup@x>').execute();
    assert.equal(n.length, 1);
  });

  test('listing: newest first, cursor, and case-insensitive substring filters that treat % and _ literally', async () => {
    const rows = [
      newMessageRow(newId(), env(['sales@shop.test'], '2026-11-01T00:00:00Z'), blob(10), head('<l1@x>', 'Invoice 100% PAID'), null),
      newMessageRow(newId(), env(['support@shop.test'], '2026-11-02T00:00:00Z'), blob(11), head('<l2@x>', 'invoice 1000 paid'), null),
      newMessageRow(newId(), env(['sales@shop.test'], '2026-11-03T00:00:00Z'), blob(12), head('<l3@x>', 'my_file attached'), null),
      newMessageRow(newId(), env(['sales@shop.test'], '2026-11-04T00:00:00Z'), blob(13), head('<l4@x>', 'myXfile attached'), null),
    ];
    await insertMessages(db.kysely, rows);
    const ids = (ms: { id: string }[]) => ms.map((m) => m.id);
    const page1 = await listMessages(db.kysely, { limit: 2, since: '2026-11-01T00:00:00Z', until: '2026-11-05T00:00:00Z' });
    assert.deepEqual(ids(page1), [rows[3].id, rows[2].id]);
    const page2 = await listMessages(db.kysely, { limit: 2, since: '2026-11-01T00:00:00Z', until: '2026-11-05T00:00:00Z', before: page1[1].id });
    assert.deepEqual(ids(page2), [rows[1].id, rows[0].id]);
    assert.deepEqual(ids(await listMessages(db.kysely, { limit: 10, subject: 'INVOICE' })), [rows[1].id, rows[0].id]);
    assert.deepEqual(ids(await listMessages(db.kysely, { limit: 10, subject: '100%' })), [rows[0].id]);
    assert.deepEqual(ids(await listMessages(db.kysely, { limit: 10, subject: 'my_file' })), [rows[2].id]);
    assert.deepEqual(ids(await listMessages(db.kysely, { limit: 10, rcpt: 'SUPPORT@' })), [rows[1].id]);
    const fromSender = await listMessages(db.kysely, { limit: 100, from: 'sender@example' });
    assert.ok(fromSender.length >= 4, 'matches the envelope sender whatever its case');
    assert.deepEqual(ids(await listMessages(db.kysely, { limit: 10, since: '2026-11-02T00:00:00Z', until: '2026-11-03T00:00:00Z' })), [rows[1].id]);
  });

  test('parsed results round-trip: parts in order, ordered headers and addresses as JSON', async () => {
    const row = newMessageRow(newId(), env(['p@x.test']), blob(20), head('<p@x>', 'parsed'), null);
    await insertMessages(db.kysely, [row]);
    const part = (idx: number, kind: string) => ({
      id: newId(), message: row.id, idx, kind, filename: idx ? `f${idx}.pdf` : null, original_filename: null,
      content_type: idx ? 'application/pdf' : 'text/plain', content_id: null, size: 3_000_000_000 + idx, sha256: blob(30 + idx).sha256,
    });
    const headers: [string, string][] = [['Subject', 'parsed'], ['X-Ünïcode', 'ja ✓'], ['Received', 'b'], ['Received', 'a']];
    await saveParsed(db.kysely, row.id, {
      headers: headers.map(([name, value]) => ({ name, value })) as never,
      addresses: { from: [{ address: 'ann@example.net', name: 'Ann' }] },
      subject: 'parsed', from: 'ann@example.net', date: null,
      parts: [part(1, 'attachment'), part(0, 'text')],
      parseStatus: 'parsed',
    });
    const parts = await getParts(db.kysely, row.id);
    assert.deepEqual(parts.map((p) => [p.idx, p.kind, p.size]), [[0, 'text', 3_000_000_000], [1, 'attachment', 3_000_000_001]]);
    const detail = await getParsedDetail(db.kysely, row.id);
    assert.deepEqual(detail?.headers, headers.map(([name, value]) => ({ name, value })));
    assert.deepEqual(detail?.addresses, { from: [{ address: 'ann@example.net', name: 'Ann' }] });
    assert.equal((await getMessage(db.kysely, row.id))?.parseStatus, 'parsed');
    assert.equal((await getMessage(db.kysely, row.id))?.status, 'received', 'parsing leaves the delivery status alone');
  });

  test('two nodes on one store accepting the same message at once keep it once', async () => {
    const config = validateConfig({ dataDir: db.dir, store: { database: db.url } });
    const other = openDb(db.url, db.dir);
    try {
      const blobs = openBlobStore(config, db);
      assert.ok(db.dialect === 'postgres' ? blobs instanceof DbBlobStore : blobs instanceof FsBlobStore, 'default blob store for the backend');
      const nodes = [db, other].map(
        (d) => new Intake({ db: d, blobs: openBlobStore(config, d), log, metrics: createMetrics(), hostname: 'mx.test' }),
      );
      const raw = 'Message-ID: <race@x>\r\nSubject: race\r\n\r\nsame bytes\r\n';
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => nodes[i % 2].accept(env(['race@x.test']), bytes(raw), { trace: false })),
      );
      assert.equal(new Set(results.map((r) => r.id)).size, 1);
      assert.equal(results.filter((r) => !r.duplicate).length, 1);
      const stream = await nodes[1].accept(env(['race@x.test']), bytes(raw), { trace: false });
      const back: Buffer[] = [];
      for await (const c of await openBlobStore(config, other).open(stream.rawSha256)) back.push(c as Buffer);
      assert.equal(Buffer.concat(back).toString(), raw, 'the other node reads the bytes');
      await Promise.all(nodes.map((n) => n.close()));
    } finally {
      await other.close();
    }
  });

  test('three `postroom migrate` processes on a fresh store apply each migration exactly once', async () => {
    const tmp = tempDir();
    const pgs = testBackend() === 'postgres' ? await pgTestSchema() : undefined;
    const url = pgs?.url ?? path.join(tmp.dir, 'fresh.db');
    const run = () =>
      new Promise<string>((resolve, reject) =>
        execFile(process.execPath, [path.join(root, 'bin/postroom.js'), 'migrate'], {
          env: cleanEnv({ POSTROOM_DATA_DIR: tmp.dir, POSTROOM_DATABASE_URL: url }),
        }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))),
      );
    try {
      const outputs = await Promise.all([run(), run(), run()]);
      const applied = outputs.flatMap((o) => /^applied: (.*)$/m.exec(o)?.[1].split(', ') ?? []);
      assert.deepEqual(applied.sort(), Object.keys(migrations).sort());
      assert.equal(outputs.filter((o) => o.trim() === 'up to date').length, 2);
    } finally {
      await pgs?.drop();
      tmp.cleanup();
    }
  });

  test("the database's disk full (SQLSTATE 53100) is answered 452 4.3.1, like a full file system", () => {
    const err = Object.assign(new Error('could not extend file: No space left on device'), { code: '53100' });
    const reply = toSmtpReply(err);
    assert.equal(reply.code, 452);
    assert.match(reply.message, /^4\.3\.1 /);
  });
});
