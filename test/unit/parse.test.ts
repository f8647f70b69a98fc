import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { validateConfig } from '../../src/config/load.js';
import type { Envelope } from '../../src/core/message.js';
import { Intake } from '../../src/intake/accept.js';
import { sanitiseFilename } from '../../src/mime/filename.js';
import { dbText, MAX_TEXT_BYTES, parseStream, type ParseResult } from '../../src/mime/parse.js';
import { ParseAndStore, SMALL_MESSAGE, type ParsedNow } from '../../src/mime/parse-and-store.js';
import { buildParsedView, viewOfParse } from '../../src/mime/parsed-view.js';
import type { BlobStore } from '../../src/store/ports.js';
import type { KyselyPlugin } from 'kysely';
import { FsBlobStore } from '../../src/store/blobs.js';
import { migrate, openDb, type Db } from '../../src/store/db.js';
import { getMessage, getParsedDetail, getParts } from '../../src/store/messages.js';
import { createMetrics, type Metrics } from '../../src/telemetry/metrics.js';
import { requirePeer, tempDir, waitFor } from '../helpers/env.js';
import { pythonParts } from '../helpers/python-email.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/mime');
const config = validateConfig({}).parse;
const fixtures = readdirSync(FIXTURES).filter((f) => f.endsWith('.eml')).sort();
/** Fixtures that must come out as status raw, and why. */
const RAW: Record<string, RegExp> = {
  'deep-nesting-over.eml': /nesting deeper than 20/,
  'huge-header.eml': /header size/i,
};

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readBlob(blobs: FsBlobStore, sha256: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await blobs.open(sha256)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('parse: every corpus message against Python email as the reference parser', () => {
  const tmp = tempDir();
  const blobs = new FsBlobStore(tmp.dir);
  after(() => tmp.cleanup());
  const results = new Map<string, ParseResult>();
  const parse = async (f: string) => {
    if (!results.has(f)) {
      const r = await parseStream(createReadStream(path.join(FIXTURES, f)), { blobs, config }, 'm1');
      await blobs.commit(r.staged);
      results.set(f, r);
    }
    return results.get(f)!;
  };

  for (const f of fixtures.filter((f) => !RAW[f])) {
    test(`${f}: same attachments, names, content ids and bytes as Python`, async (t) => {
      if (!requirePeer(t, 'python3')) return;
      const ours = (await parse(f)).save.parts.filter((p) => p.kind === 'attachment' || p.kind === 'inline');
      const ref = await pythonParts(path.join(FIXTURES, f));
      assert.equal(ours.length, ref.length, `part count: ${JSON.stringify(ours.map((p) => p.original_filename))}`);
      ref.forEach((py, i) => {
        const p = ours[i];
        const what = `${f} part ${i} (${py.filename})`;
        assert.equal(p.sha256, py.sha256, `${what}: sha256 of the decoded bytes`);
        assert.equal(p.size, py.size, `${what}: size`);
        assert.equal(p.content_type, py.contentType, `${what}: content type`);
        assert.equal(p.content_id, py.contentId, `${what}: content id`);
        // Python strips surrounding white space from file names; we keep the name as sent.
        // NUL is kept as U+FFFD: PostgreSQL text cannot hold it.
        assert.equal(p.original_filename?.trim() ?? null, dbText(py.filename), `${what}: original file name`);
        assert.equal(p.filename, sanitiseFilename(py.filename, { maxLength: config.maxFilenameLength, index: p.idx, contentType: p.content_type }));
        assert.equal(p.kind, py.contentId && py.declared !== 'attachment' ? 'inline' : 'attachment', `${what}: kind`);
      });
      for (const p of (await parse(f)).save.parts) {
        assert.equal(sha(await readBlob(blobs, p.sha256)), p.sha256, `${f}: part ${p.idx} blob round-trips`);
      }
    });
  }

  test('nested multiparts: text, html, one inline image with its Content-ID, one attachment', async () => {
    const { save } = await parse('nested-multipart.eml');
    assert.deepEqual(
      save.parts.map((p) => [p.kind, p.filename, p.content_id]),
      [
        ['text', null, null],
        ['html', null, null],
        ['inline', 'logo.png', 'logo@example.org'],
        ['attachment', 'report.pdf', null],
        // Each inline text part as sent (its charset kept), after the attachments.
        ['body', null, null],
        ['body', null, null],
      ],
    );
    const text = (await readBlob(blobs, save.parts[0].sha256)).toString('utf8');
    assert.match(text, /Grüße/);
    const html = (await readBlob(blobs, save.parts[1].sha256)).toString('utf8');
    assert.match(html, /cid:logo@example\.org/);
  });

  test('addresses come out as {name, address} lists, groups and commas in names handled', async () => {
    const { save } = await parse('nested-multipart.eml');
    assert.deepEqual(save.addresses, {
      from: [{ name: 'Alice Example', address: 'alice@example.org' }],
      to: [
        { name: 'Bob', address: 'bob@example.net' },
        { name: '', address: 'carol@example.net' },
      ],
      cc: [{ name: 'Dave, the third', address: 'dave@example.net' }],
      replyTo: [{ name: '', address: 'replies@example.org' }],
    });
    assert.equal(save.from, '"Alice Example" <alice@example.org>');
    assert.equal(save.date, '2025-06-03T10:00:00.000Z');
  });

  test('keeps every header in order, duplicates included, folded values unfolded', async () => {
    const { save } = await parse('ordered-headers.eml');
    const names = save.headers.map(([n]) => n);
    assert.deepEqual(names.slice(3), ['Subject', 'Message-ID', 'Received', 'Received', 'X-Tag', 'X-Long', 'X-Tag', 'Content-Type']);
    assert.deepEqual(
      save.headers.filter(([n]) => n === 'X-Tag').map(([, v]) => v),
      ['one', 'two'],
    );
    assert.equal(save.headers.find(([n]) => n === 'X-Long')?.[1], 'a folded value over three lines');
  });

  test('decodes RFC 2047 subjects across charsets', async () => {
    assert.equal((await parse('rfc2047-filenames.eml')).save.subject, 'RFC 2047 file names – grüße');
  });

  test('decodes 8bit bodies in their declared charset', async () => {
    const utf8 = (await parse('eightbit.eml')).save.parts[0];
    assert.match((await readBlob(blobs, utf8.sha256)).toString('utf8'), /Grüße aus Köln – ½ € ☃/);
    const latin1 = (await parse('latin1-8bit.eml')).save.parts[0];
    assert.match((await readBlob(blobs, latin1.sha256)).toString('utf8'), /Grüße aus München/);
  });

  test('an HTML-only message has an html part (kept as sent) and a text rendering', async () => {
    const { save } = await parse('html-only.eml');
    assert.deepEqual(save.parts.map((p) => p.kind), ['text', 'html']);
    const html = (await readBlob(blobs, save.parts[1].sha256)).toString('utf8');
    assert.match(html, /<script>alert\(1\)<\/script>/, 'served later under a CSP, not rewritten here');
    assert.match((await readBlob(blobs, save.parts[0].sha256)).toString('utf8'), /Café/);
  });

  test('an attached message is one attachment; an inline one is opened and its parts listed', async () => {
    const att = (await parse('attached-message.eml')).save.parts;
    assert.deepEqual(att.map((p) => [p.kind, p.content_type, p.filename]), [
      ['text', 'text/plain; charset=utf-8', null],
      ['attachment', 'message/rfc822', 'forwarded.eml'],
    ]);
    const inl = (await parse('attached-message-inline.eml')).save.parts;
    assert.deepEqual(inl.map((p) => [p.kind, p.filename]), [
      ['text', null],
      ['attachment', 'inner.dat'],
      ['body', null],
      ['body', null],
    ]);
  });

  test('inline images: Content-ID makes a part inline unless the sender marked it attachment', async () => {
    const { save } = await parse('inline-images.eml');
    assert.deepEqual(save.parts.map((p) => [p.kind, p.filename, p.content_id]), [
      ['html', null, null],
      ['inline', 'attachment-1.png', 'part1.abc@example.org'],
      ['inline', 'anim.gif', 'part2'],
      ['attachment', 'attached-with-cid.jpg', 'attached@example.org'],
    ]);
  });

  test('hostile file names are sanitised, the original kept as metadata', async () => {
    const parts = (await parse('hostile-filenames.eml')).save.parts.filter((p) => p.kind === 'attachment');
    const byOriginal = new Map(parts.map((p) => [p.original_filename, p.filename]));
    assert.equal(byOriginal.get('../../etc/passwd'), 'passwd');
    assert.equal(byOriginal.get('invoice\u202efdp.exe'), 'invoicefdp.exe');
    assert.equal(byOriginal.get('CON'), '_CON');
    assert.equal(byOriginal.get('nul\ufffdbyte.txt'), 'nulbyte.txt', 'NUL kept as U+FFFD in the original');
    assert.equal(byOriginal.get(null), 'attachment-12.png');
    for (const p of parts) {
      assert.doesNotMatch(p.filename!, /[/\\\u0000-\u001f\u202a-\u202e]|\.\./);
      assert.ok(Buffer.byteLength(p.filename!) <= config.maxFilenameLength);
    }
  });

  test('broken boundaries: the parts that are there are kept, nothing crashes', async () => {
    const { save } = await parse('broken-boundary.eml');
    assert.deepEqual(save.parts.map((p) => [p.kind, p.filename]), [
      ['text', null],
      ['attachment', 'cut.bin'],
    ]);
  });

  for (const [f, why] of Object.entries(RAW)) {
    test(`${f}: refused by a parse limit (${why.source})`, async () => {
      await assert.rejects(parseStream(createReadStream(path.join(FIXTURES, f)), { blobs, config }, 'm1'), why);
    });
  }

  test('a huge text body is cut at the in-memory limit, not held whole', async () => {
    const line = Buffer.from(`${'x'.repeat(76)}\r\n`);
    const body = Buffer.concat(Array(Math.ceil((MAX_TEXT_BYTES * 2) / line.length)).fill(line));
    const head = Buffer.from('Subject: big text\r\nContent-Type: text/plain\r\n\r\n');
    const r = await parseStream(Readable.from([head, body]), { blobs, config }, 'm1');
    assert.equal(r.truncated, true);
    assert.deepEqual(r.save.parts.map((p) => p.kind), ['text']);
    assert.ok(r.save.parts[0].size <= MAX_TEXT_BYTES && r.save.parts[0].size > MAX_TEXT_BYTES / 2, `size ${r.save.parts[0].size}`);
    const small = await parse('nested-multipart.eml');
    assert.ok(!small.truncated);
  });

  test('a long UTF-8 text body is stored byte for byte (astral characters across the encoder pieces)', async () => {
    // Odd offsets put one emoji (a surrogate pair in JavaScript) across every 64 Ki-character piece.
    const text = `${'a'.repeat(65_535)}${'😀é'.repeat(70_000)}`;
    const head = Buffer.from('Subject: emoji\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n');
    const r = await parseStream(Readable.from([head, Buffer.from(text, 'utf8')]), { blobs, config }, 'm1');
    await blobs.commit(r.staged);
    const part = r.save.parts.find((p) => p.kind === 'text')!;
    assert.equal(sha(await readBlob(blobs, part.sha256)), sha(Buffer.from(text, 'utf8')));
  });

  test('base64 attachments decode to the original bytes (line breaks and chunk edges anywhere)', async () => {
    const bytes = randomBytes(300_001);
    const b64 = bytes.toString('base64').replace(/.{76}/g, '$&\r\n');
    const msg = Buffer.from(
      'Subject: b64\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n' +
        `--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64}\r\n--b--\r\n`,
    );
    // Chunks of 1000 bytes: quartets and CRLFs split across chunk edges all along the part.
    const chunks = Array.from({ length: Math.ceil(msg.length / 1000) }, (_, i) => msg.subarray(i * 1000, (i + 1) * 1000));
    const r = await parseStream(Readable.from(chunks), { blobs, config }, 'm1');
    const att = r.save.parts.find((p) => p.kind === 'attachment')!;
    assert.equal(att.size, bytes.length);
    assert.equal(att.sha256, sha(bytes));
  });

  test('mangled corpus messages (cut, bytes flipped, boundaries spliced in) always settle', async () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (const f of fixtures.filter((f) => f !== 'huge-header.eml')) {
      const orig = readFileSync(path.join(FIXTURES, f));
      for (let i = 0; i < 9; i++) {
        const b = Buffer.from(orig);
        let m: Buffer;
        if (i % 3 === 0) m = b.subarray(0, rnd(b.length));
        else if (i % 3 === 1) {
          for (let k = 0; k < 10; k++) b[rnd(b.length)] = rnd(256);
          m = b;
        } else {
          const at = rnd(b.length);
          const splice = '\r\n--outer\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n';
          m = Buffer.concat([b.subarray(0, at), Buffer.from(splice), b.subarray(at)]);
        }
        const chunks: Buffer[] = [];
        for (let o = 0; o < m.length; ) {
          const n = 1 + rnd(300);
          chunks.push(m.subarray(o, o + n));
          o += n;
        }
        // Resolves or rejects with a reason: both are fine; hanging or crashing is not.
        await parseStream(Readable.from(chunks), { blobs, config }, 'm1').then(
          (r) => Promise.all(r.staged.map((s) => blobs.discard(s))),
          (e: unknown) => assert.ok(e instanceof Error),
        );
      }
    }
  });

  test('a deep message within the limit parses', async () => {
    const { save } = await parse('deep-nesting-ok.eml');
    assert.deepEqual(save.parts.map((p) => p.filename), ['deep.bin']);
  });
});

/** One buffer as the async stream intake takes. */
const stream = (b: Buffer) => Readable.from([b]);
const envelope = (): Envelope => ({ mailFrom: 's@example.net', rcptTo: ['r@example.org'], ingress: 'smtp', receivedAt: new Date() });

describe('parse worker', () => {
  const tmp = tempDir();
  let db: Db;
  let blobs: FsBlobStore;
  let metrics: Metrics;
  let intake: Intake;
  let worker: ParseAndStore;
  const log = pino({ level: 'silent' });
  const parsedIds: string[] = [];
  const handed = new Map<string, ParsedNow>();
  before(async () => {
    db = openDb(undefined, tmp.dir);
    await migrate(db);
    blobs = new FsBlobStore(path.join(tmp.dir, 'blobs'));
    metrics = createMetrics();
    intake = new Intake({ db, blobs, log, metrics, hostname: 'mx.test' });
    worker = new ParseAndStore({ db, blobs, log, metrics, config });
    worker.on('parsed', (id, now) => {
      parsedIds.push(id);
      handed.set(id, now);
    });
    intake.on('stored', (m) => worker.enqueue(m.id, m));
    await worker.start();
  });
  after(async () => {
    await intake.close();
    await worker.stop();
    await db.close();
    tmp.cleanup();
  });
  const keep = (file: string) => intake.accept(envelope(), stream(readFileSync(path.join(FIXTURES, file))));

  test('parses after the ack, stores parts and headers, emits parsed', async () => {
    const m = await keep('nested-multipart.eml');
    await worker.idle();
    assert.ok(parsedIds.includes(m.id));
    const parts = await getParts(db.kysely, m.id);
    assert.deepEqual(parts.map((p) => p.kind), ['text', 'html', 'inline', 'attachment', 'body', 'body']);
    assert.equal(parts[2].contentId, 'logo@example.org');
    for (const p of parts) assert.ok(await blobs.has(p.sha256), 'part blob committed');
    const detail = await getParsedDetail(db.kysely, m.id);
    assert.ok(detail?.parsedAt);
    assert.equal(detail?.headers[0][0], 'From');
    assert.equal((await getMessage(db.kysely, m.id))?.status, 'received');
    assert.equal((await getMessage(db.kysely, m.id))?.parseStatus, 'parsed');
  });

  for (const [f, why] of Object.entries(RAW)) {
    test(`keeps ${f} as parse status raw with the reason, counts a parse failure`, async () => {
      const before = (await metrics.parseFailures.get()).values[0]?.value ?? 0;
      const m = await keep(f);
      await worker.idle();
      const row = await getMessage(db.kysely, m.id);
      assert.equal(row?.parseStatus, 'raw');
      assert.match(row?.parseError ?? '', why);
      assert.equal(row?.status, 'received', 'the delivery status is apart from the parse outcome');
      assert.equal((await metrics.parseFailures.get()).values[0]?.value, before + 1);
      const parts = await getParts(db.kysely, m.id);
      assert.deepEqual(parts.map((p) => [p.kind, p.sha256]), [['raw', m.rawSha256]]);
      assert.ok(parsedIds.includes(m.id), 'parsed is emitted for raw messages too: routing still runs');
    });
  }

  test('garbage never crashes the worker', async () => {
    const junk = [
      Buffer.from('\r\n\r\n'),
      Buffer.from('Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n--\r\n'),
      Buffer.from('Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nhi\r\n'),
      Buffer.from('Content-Transfer-Encoding: base64\r\nContent-Type: application/pdf\r\n\r\n!!!not base64!!!\r\n'),
      Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)),
    ];
    const kept = await Promise.all(junk.map((b) => intake.accept(envelope(), stream(b))));
    await worker.idle();
    for (const m of kept) {
      const row = await getMessage(db.kysely, m.id);
      assert.ok(row && row.status === 'received' && row.parseStatus !== 'pending', `status ${row?.status}, parse ${row?.parseStatus}`);
      assert.ok((await getParsedDetail(db.kysely, m.id))?.parsedAt, 'marked parsed');
    }
  });

  test('start() sweeps messages kept while no worker ran (a crash before parsing)', async () => {
    const m = await keep('inline-images.eml');
    // The 'stored' listener enqueued it; a second worker on the same store stands in for a restart.
    await worker.idle();
    await db.kysely.updateTable('messages').set({ parsed_at: null }).where('id', '=', m.id).execute();
    await db.kysely.deleteFrom('parts').where('message', '=', m.id).execute();
    const again = new ParseAndStore({ db, blobs, log, metrics, config });
    const seen: string[] = [];
    again.on('parsed', (id) => seen.push(id));
    await again.start();
    await again.idle();
    await again.stop();
    assert.deepEqual(seen, [m.id]);
    assert.equal((await getParts(db.kysely, m.id)).length, 4);
  });
  test('hands over what it saved: the same view as reading the message back from the store', async () => {
    for (const file of ['nested-multipart.eml', 'deep-nesting-over.eml']) {
      const m = await keep(file);
      await worker.idle();
      const now = handed.get(m.id);
      assert.ok(now, `parsed carried what was saved (${file})`);
      const mine = viewOfParse(blobs, now.message, now.saved);
      const stored = await buildParsedView({ db, blobs }, m.id);
      assert.deepEqual(mine.message, stored.message, file);
      assert.deepEqual(mine.headers, stored.headers, file);
      assert.deepEqual(mine.addresses, stored.addresses, file);
      assert.deepEqual(mine.parts, stored.parts, file);
      assert.equal(await mine.text(), await stored.text(), file);
    }
  });

  test('small messages just received parse beside the workers slots; larger ones take a slot each', async () => {
    // One slot, and a blob store whose reads wait for the test: what is being parsed at once shows.
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const reading = new Set<string>();
    const most = { small: 0, large: 0 };
    const sizes = new Map<string, number>();
    const gated: BlobStore = Object.assign(Object.create(blobs) as BlobStore, {
      async open(sha256: string) {
        reading.add(sha256);
        for (const k of ['small', 'large'] as const) {
          const n = [...reading].filter((h) => (sizes.get(h)! <= SMALL_MESSAGE) === (k === 'small')).length;
          most[k] = Math.max(most[k], n);
        }
        await gate;
        reading.delete(sha256);
        return blobs.open(sha256);
      },
    });
    const one = new ParseAndStore({ db, blobs: gated, log, metrics, config: { ...config, workers: 1 } });
    const big = (i: number) => Buffer.from(`Subject: big ${i}\r\n\r\n${'x'.repeat(SMALL_MESSAGE)}\r\n`);
    const small = (i: number) => Buffer.from(`Subject: small ${i}\r\n\r\nhello\r\n`);
    const kept = [];
    for (const b of [small(1), small(2), small(3), big(1), big(2)]) kept.push(await intake.accept(envelope(), stream(b)));
    await worker.idle();
    for (const m of kept) sizes.set(m.rawSha256, m.size);
    for (const m of kept) one.enqueue(m.id, m);
    await waitFor(() => reading.size === 4, 'three small parses and one large one to be reading at once');
    open();
    await one.idle();
    await one.stop();
    assert.deepEqual(most, { small: 3, large: 1 });
  });

  test('rows the database refuses: kept as raw with the reason, nothing of the refused parse left', async () => {
    let refuse = true;
    const refuseParts: KyselyPlugin = {
      transformQuery(args) {
        const node = args.node as { kind: string; into?: { table: { identifier: { name: string } } } };
        if (refuse && node.kind === 'InsertQueryNode' && node.into?.table.identifier.name === 'parts') {
          refuse = false;
          throw new Error('value out of range for the test');
        }
        return args.node;
      },
      async transformResult(args) {
        return args.result;
      },
    };
    const picky = new ParseAndStore({ db: { ...db, kysely: db.kysely.withPlugin(refuseParts) }, blobs, log, metrics, config });
    const m = await keep('nested-multipart.eml');
    await worker.idle();
    await db.kysely.updateTable('messages').set({ parsed_at: null }).where('id', '=', m.id).execute();
    picky.enqueue(m.id);
    await picky.idle();
    await picky.stop();
    assert.equal(refuse, false, 'the parts insert was refused');
    const row = await getMessage(db.kysely, m.id);
    assert.equal(row?.parseStatus, 'raw');
    assert.match(row?.parseError ?? '', /could not be stored: value out of range for the test/);
    const parts = await getParts(db.kysely, m.id);
    assert.deepEqual(parts.map((p) => [p.kind, p.sha256]), [['raw', m.rawSha256]]);
  });

  test('store trouble while committing part blobs leaves the message unparsed for the next start', async () => {
    const failing: BlobStore = Object.assign(Object.create(blobs) as BlobStore, {
      async commit() {
        throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      },
    });
    const stuck = new ParseAndStore({ db, blobs: failing, log, metrics, config });
    const seen: string[] = [];
    stuck.on('parsed', (id) => seen.push(id));
    const m = await keep('inline-images.eml');
    await worker.idle();
    await db.kysely.updateTable('messages').set({ parsed_at: null }).where('id', '=', m.id).execute();
    await db.kysely.deleteFrom('parts').where('message', '=', m.id).execute();
    stuck.enqueue(m.id);
    await stuck.idle();
    await stuck.stop();
    assert.deepEqual(seen, [], 'not handed to the planner');
    assert.equal((await getParsedDetail(db.kysely, m.id))?.parsedAt, null);
    assert.equal((await getMessage(db.kysely, m.id))?.status, 'received');
    assert.deepEqual(await getParts(db.kysely, m.id), []);
  });
});
