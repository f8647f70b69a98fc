import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { validateConfig } from '../../src/config/load.js';
import type { StoredMessage } from '../../src/core/message.js';
import { parseStored, type ParseBlobs } from '../../src/mime/parse.js';
import { ParseThread } from '../../src/mime/parse-thread.js';
import { stageStream } from '../../src/store/stage.js';
import { waitFor } from '../helpers/env.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/mime');
const config = validateConfig({}).parse;
const log = pino({ level: 'silent' });

function message(id: string, raw: Buffer): StoredMessage {
  return {
    id,
    ingress: 'smtp',
    mailFrom: 'a@example.org',
    rcptTo: ['b@example.org'],
    clientIp: null,
    helo: null,
    authUser: null,
    receivedAt: new Date(0).toISOString(),
    messageId: null,
    subject: 'sniffed subject',
    from: null,
    date: null,
    size: raw.length,
    rawSha256: 'f'.repeat(64),
    trace: null,
    status: 'received',
    parseStatus: 'pending',
    parseError: null,
    error: null,
  };
}

/** In-process parsing from memory: the reference the thread must match. */
function memory(raw: Buffer): ParseBlobs {
  return {
    open: async () => Readable.from([raw]),
    stage: (src) => stageStream('', src, { inlineLimit: Number.MAX_SAFE_INTEGER, fsync: false }),
    discard: async () => {},
  };
}

/** Part ids are fresh per parse; everything else must be equal. */
const withoutIds = (r: { save: { parts: { id: string }[] } }) => ({ ...r.save, parts: r.save.parts.map((p) => ({ ...p, id: '' })) });

/** The thread's private Worker, to end it from outside as a crash would. */
const workerOf = (t: ParseThread) => (t as unknown as { worker?: { terminate(): Promise<number> } }).worker;

describe('parse thread', () => {
  const thread = new ParseThread(config, log, 60_000);
  after(() => thread.close());

  test('every corpus message parses on the thread exactly as in-process: rows, headers, part bytes', async () => {
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.eml'));
    assert.ok(files.length >= 10);
    await Promise.all(
      files.map(async (f, i) => {
        const raw = readFileSync(path.join(FIXTURES, f));
        const msg = message(`m${i}`, raw);
        const there = await thread.parse(msg, raw);
        assert.ok(there, `${f}: the thread answered`);
        const here = await parseStored(msg, { blobs: memory(raw), config });
        assert.deepEqual(withoutIds(there), withoutIds(here), f);
        assert.equal(there.truncated, here.truncated, f);
        assert.deepEqual(
          there.staged.map((s) => [s.sha256, s.size, Buffer.from(s.data!).toString('base64')]),
          here.staged.map((s) => [s.sha256, s.size, s.data!.toString('base64')]),
          `${f}: the parts' bytes`,
        );
      }),
    );
  });

  test('parts staged again on the main side keep the hash the thread computed, without hashing twice', async () => {
    const raw = readFileSync(path.join(FIXTURES, 'nested-multipart.eml'));
    const r = await thread.parse(message('rehash', raw), raw);
    for (const s of r!.staged) {
      const again = await stageStream('', [s.data!], { inlineLimit: Number.MAX_SAFE_INTEGER, fsync: false, sha256: s.sha256 });
      assert.equal(again.sha256, s.sha256);
      assert.equal(again.sha256, createHash('sha256').update(s.data!).digest('hex'), 'the thread hashed the bytes it sent');
    }
    // The hint is taken as given (it only ever comes from this process): a wrong one would stick.
    const trusted = await stageStream('', [Buffer.from('x')], { inlineLimit: 10, fsync: false, sha256: 'a'.repeat(64) });
    assert.equal(trusted.sha256, 'a'.repeat(64));
  });

  test('a message the parser refuses comes back as raw with the reason, as in-process', async () => {
    const raw = readFileSync(path.join(FIXTURES, 'deep-nesting-over.eml'));
    const r = await thread.parse(message('deep', raw), raw);
    assert.equal(r?.save.parseStatus, 'raw');
    assert.match(r?.save.parseError ?? '', /nesting deeper than 20/);
  });

  test('a thread that dies answers undefined (the caller parses in-process) and the next parse starts a new one', async () => {
    const t = new ParseThread(config, log, 60_000);
    try {
      const raw = readFileSync(path.join(FIXTURES, 'nested-multipart.eml'));
      assert.ok(await t.parse(message('a', raw), raw), 'first thread answers');
      // Queued behind a parse of ~4 MiB (tens of ms), so it is still waiting when the thread
      // dies; a small parse alone could answer before terminate() lands.
      const big = Buffer.from(`Subject: big\r\n\r\n${'0123456789abcdef'.repeat(64).concat('\r\n').repeat(4000)}`);
      const busy = t.parse(message('big', big), big);
      const lost = t.parse(message('b', raw), raw);
      await workerOf(t)!.terminate();
      assert.equal(await lost, undefined, 'a parse in flight when the thread died');
      await busy;
      const again = await t.parse(message('c', raw), raw);
      assert.equal(again?.save.parts.length, 6, 'a new thread parses'); // text, html, 2 files, 2 text parts as sent
    } finally {
      await t.close();
    }
  });

  test('after three deaths the thread is not started again: parsing stays in-process', async () => {
    const t = new ParseThread(config, log, 60_000);
    try {
      const raw = Buffer.from('Subject: hi\r\n\r\nhello\r\n');
      for (let i = 0; i < 3; i++) {
        const p = t.parse(message(`d${i}`, raw), raw);
        await workerOf(t)!.terminate();
        assert.equal(await p, undefined);
      }
      assert.equal(await t.parse(message('e', raw), raw), undefined);
      assert.equal(workerOf(t), undefined, 'no thread was started');
    } finally {
      await t.close();
    }
  });

  test('a thread without work ends after idleMs, and starts again on demand', async () => {
    const t = new ParseThread(config, log, 50);
    try {
      const raw = Buffer.from('Subject: hi\r\n\r\nhello\r\n');
      assert.ok(await t.parse(message('f', raw), raw));
      assert.ok(workerOf(t), 'running while used');
      await waitFor(() => workerOf(t) === undefined, 'the idle thread to end');
      assert.equal((await t.parse(message('g', raw), raw))?.save.subject, 'hi');
    } finally {
      await t.close();
    }
  });
});
