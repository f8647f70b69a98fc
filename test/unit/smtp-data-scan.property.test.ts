import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { applyDataScan, indexOfFeedDataStream, libraryFeedDataStream } from '../../src/ingress/smtp-data-scan.js';

type Feed = typeof libraryFeedDataStream;

interface Outcome {
  data: string;
  dataBytes: number;
  ended: boolean;
  commands: string[];
}

/**
 * Feed `chunks` to a real SMTPStream in DATA mode whose DATA reader is `feed`; returns what the
 * message stream received, whether DATA ended, and the commands read after it.
 */
async function run(feed: Feed, chunks: Buffer[]): Promise<Outcome> {
  const parser = new SMTPStream();
  (parser as unknown as { _feedDataStream: Feed })._feedDataStream = feed;
  const commands: string[] = [];
  parser.oncommand = (cmd: Buffer, cb?: () => void) => {
    commands.push(cmd.toString('latin1'));
    cb?.();
  };
  const stream = parser.startDataMode(1e9);
  const got: Buffer[] = [];
  let ended = false;
  stream.on('data', (b: Buffer) => got.push(b));
  stream.on('end', () => {
    ended = true;
    parser.continue();
  });
  for (const c of chunks) await new Promise<void>((resolve, reject) => parser.write(c, (err) => (err ? reject(err) : resolve())));
  // Let setImmediate continuations (dot-unstuffing) and the stream's end run.
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return { data: Buffer.concat(got).toString('latin1'), dataBytes: parser.dataBytes, ended, commands };
}

// Bytes that make SMTP's DATA structure (dots, line ends) far more often than random bytes would.
const piece = fc.constantFrom('.', '..', '\r\n', '\n', '\r', 'a', ' ', '\r\n.\r\n', '\r\n..', 'QUIT\r\n', 'x\r\n');
const input = fc.array(piece, { maxLength: 60 }).map((p) => Buffer.from(p.join(''), 'latin1'));

function cut(buf: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((a) => a % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    if (p > from) out.push(buf.subarray(from, p));
    from = Math.max(from, p);
  }
  if (from < buf.length) out.push(buf.subarray(from));
  return out;
}

test('the indexOf DATA reader gives what smtp-server\'s own gives, for any bytes in any chunks', async () => {
  await fc.assert(
    fc.asyncProperty(input, fc.array(fc.nat(), { maxLength: 8 }), async (buf, at) => {
      const chunks = cut(buf, at);
      const ours = await run(indexOfFeedDataStream, chunks);
      const theirs = await run(libraryFeedDataStream, chunks);
      assert.deepEqual(ours, theirs);
    }),
    { numRuns: 3000 },
  );
});

test('the classic smuggling forms end DATA where smtp-server ends it', async () => {
  for (const raw of ['a\r\n.\r\nMAIL FROM:<x@y>\r\n', 'a\n.\nMAIL FROM:<x@y>\r\n.\r\n', 'a\r\n.\nRCPT TO:<z@y>\r\n.\r\n', '..\r\n.\r\n', '.\r\n']) {
    const bytes = Buffer.from(raw, 'latin1');
    for (let n = 1; n <= bytes.length; n++) {
      const chunks = cut(bytes, Array.from({ length: Math.ceil(bytes.length / n) }, (_, i) => i * n));
      assert.deepEqual(await run(indexOfFeedDataStream, chunks), await run(libraryFeedDataStream, chunks), `${JSON.stringify(raw)} in chunks of ${n}`);
    }
  }
});

test('the installed smtp-server is the one the fast reader was compared with', () => {
  // When this fails after an upgrade, Postroom falls back to the library's reader: compare the
  // new _feedDataStream with indexOfFeedDataStream and add its hash to KNOWN.
  assert.equal(applyDataScan(), true);
});
