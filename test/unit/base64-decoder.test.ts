import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { test } from 'node:test';
import { Base64Decoder } from '../../src/mime/base64-decoder.js';

/** Decode through the stream, the input cut into chunks at the given offsets. */
async function decode(input: Buffer, cuts: number[] = []): Promise<Buffer> {
  const pieces: Buffer[] = [];
  let at = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    pieces.push(input.subarray(at, c));
    at = c;
  }
  pieces.push(input.subarray(at));
  return buffer(Readable.from(pieces).pipe(new Base64Decoder()));
}

/** The reference: junk dropped, then each `=`-separated segment decoded on its own by Node. */
function reference(input: Buffer): Buffer {
  const text = input.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, '');
  return Buffer.concat(text.split(/=+/).filter(Boolean).map((s) => Buffer.from(s, 'base64')));
}

function randomCuts(length: number): number[] {
  const n = Math.floor(Math.random() * 6);
  return Array.from({ length: n }, () => Math.floor(Math.random() * (length + 1)));
}

test('decodes MIME base64 (76-column CRLF lines) to the original bytes, however the stream is cut', async () => {
  for (const size of [0, 1, 2, 3, 57, 58, 1000, 65_537]) {
    const bytes = randomBytes(size);
    const mime = Buffer.from(`${bytes.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`);
    assert.deepEqual(await decode(mime), bytes, `${size} bytes, one chunk`);
    for (let i = 0; i < 5; i++) {
      const cuts = randomCuts(mime.length);
      assert.deepEqual(await decode(mime, cuts), bytes, `${size} bytes cut at ${cuts}`);
    }
  }
});

test('skips bytes outside the alphabet and restarts the quartet after padding, like the reference', async () => {
  const cases = [
    'QQ==QUJD', // two padded segments
    'QUI=\r\nQUJD\r\n', // every line padded on its own
    'QQ', // unpadded tail: one byte
    'QUJ', // unpadded tail: two bytes
    'Q', // a lone character: nothing
    'QQ=QUJD', // short padding
    'QU=JD',
    '=QUJD', // padding first
    'QU JD\tQU*JD!', // junk between characters
    '-_QUJD', // base64url characters are not base64
    'QUJD===QQ==',
  ];
  for (const c of cases) {
    const input = Buffer.from(c, 'latin1');
    assert.deepEqual(await decode(input), reference(input), JSON.stringify(c));
    for (let cut = 0; cut <= input.length; cut++) assert.deepEqual(await decode(input, [cut]), reference(input), `${JSON.stringify(c)} cut at ${cut}`);
  }
});

test('random noise decodes like the reference, whatever the chunking', async () => {
  const alphabet = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n -_*');
  for (let i = 0; i < 300; i++) {
    const input = Buffer.from(Array.from({ length: Math.floor(Math.random() * 200) }, () => alphabet[Math.floor(Math.random() * alphabet.length)]));
    const cuts = randomCuts(input.length);
    assert.deepEqual(await decode(input, cuts), reference(input), `${JSON.stringify(input.toString('latin1'))} cut at ${cuts}`);
  }
});
