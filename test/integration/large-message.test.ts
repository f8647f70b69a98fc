import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { Envelope } from '../../src/core/message.js';
import { getMessage, getParts } from '../../src/store/messages.js';
import { memoryWatch, testBackend } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

const MiB = 1024 * 1024;
/** Decoded attachment size: its base64 form (76-column lines) makes the message ~200 MiB. */
const ATTACHMENT = 147 * MiB;

/**
 * A ~200 MiB message, generated as it is read: a short text part and one base64 attachment of
 * pseudo-random bytes (a fresh block per 57-byte line group would be slow; a 48 KiB random block
 * with a counter stamped into every copy is fast and never repeats). The attachment's sha256 is
 * known once the stream has been read.
 */
function bigMessage(): { stream: AsyncIterable<Uint8Array>; attachmentSha256: () => string; size: () => number } {
  const hash = createHash('sha256');
  let size = 0;
  const block = randomBytes(57 * 862); // 49,134 bytes: a whole number of 57-byte base64 lines
  async function* gen(): AsyncGenerator<Uint8Array> {
    const head = Buffer.from(
      'From: big@example.org\r\nTo: r@example.org\r\nSubject: 200 MiB\r\nMessage-ID: <big@example.org>\r\n' +
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="big"\r\n\r\n' +
        '--big\r\nContent-Type: text/plain\r\n\r\nA large attachment follows.\r\n' +
        '--big\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n' +
        'Content-Disposition: attachment; filename="big.bin"\r\n\r\n',
    );
    size += head.length;
    yield head;
    for (let done = 0, n = 0; done < ATTACHMENT; n++) {
      const piece = Buffer.from(block.subarray(0, Math.min(block.length, ATTACHMENT - done)));
      piece.writeUInt32BE(n, 0);
      hash.update(piece);
      done += piece.length;
      const b64 = piece.toString('base64').replace(/.{76}/g, '$&\r\n').replace(/\r\n$/, '');
      const out = Buffer.from(`${b64}\r\n`);
      size += out.length;
      yield out;
    }
    const tail = Buffer.from('--big--\r\n');
    size += tail.length;
    yield tail;
  }
  return { stream: gen(), attachmentSha256: () => hash.digest('hex'), size: () => size };
}

let app: TestPostroom;
before(async () => {
  app = await startTestPostroom({ smtp: { enabled: false }, http: { enabled: false } });
});
after(() => app.close());

test('a 200 MiB message is kept and parsed with its attachment streamed to the blob store', { timeout: 300_000 }, async () => {
  const env: Envelope = { mailFrom: 'big@example.org', rcptTo: ['r@example.org'], ingress: 'smtp', receivedAt: new Date() };
  const msg = bigMessage();
  const mem = memoryWatch();
  const t0 = Date.now();
  try {
    const stored = await app.intake.accept(env, msg.stream, { maxSize: 250 * MiB });
    const kept = Date.now();
    const peakKeep = mem.peak();
    assert.equal(stored.size, msg.size());
    assert.ok(stored.size > 199 * MiB, `message is ${stored.size} bytes`);
    mem.reset();
    await app.parser.idle();
    const parsed = Date.now();
    const peakParse = mem.peak();
    console.log(
      `# 200 MiB message: kept in ${kept - t0} ms, parsed in ${parsed - kept} ms, ` +
        `memory (heap + buffers) rose ${(peakKeep / MiB).toFixed(1)} MiB keeping, ${(peakParse / MiB).toFixed(1)} MiB parsing`,
    );
    // Not held in memory: a message or attachment held whole would raise it by 200 MiB (the
    // attachment is 190+ MiB; +384 MiB measured with intake buffering). The bound leaves room for
    // chunks in flight and the parser's buffers. On PostgreSQL the blobs go into the database a
    // 1 MiB chunk per statement, each leaving garbage the collector has not taken when we sample
    // (no forced GC): +65.6 MiB keeping, +103.2 MiB parsing measured, streamed; still well under
    // the 200 MiB a message held whole would add on top.
    const pg = testBackend() === 'postgres';
    assert.ok(peakKeep < (pg ? 150 : 64) * MiB, `keeping raised memory by ${(peakKeep / MiB).toFixed(1)} MiB`);
    assert.ok(peakParse < (pg ? 180 : 100) * MiB, `parsing raised memory by ${(peakParse / MiB).toFixed(1)} MiB`);

    const row = await getMessage(app.db.kysely, stored.id);
    assert.equal(row?.status, 'received', row?.error ?? '');
    const parts = await getParts(app.db.kysely, stored.id);
    assert.deepEqual(parts.map((p) => [p.kind, p.filename]), [
      ['text', null],
      ['attachment', 'big.bin'],
    ]);
    const att = parts[1];
    assert.equal(att.size, ATTACHMENT);
    assert.equal(att.sha256, msg.attachmentSha256());
    // Read the blob back: every byte round-trips.
    const h = createHash('sha256');
    let n = 0;
    for await (const c of await app.blobs.open(att.sha256)) {
      h.update(c as Buffer);
      n += (c as Buffer).length;
    }
    assert.equal(n, ATTACHMENT);
    assert.equal(h.digest('hex'), att.sha256);
  } finally {
    mem.stop();
  }
});
