import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeaderSniffer, normaliseMessageId, parseHeaderBlock } from '../../src/mime/header-sniff.js';

const sniff = (chunks: string[], limit?: number) => {
  const s = new HeaderSniffer(limit);
  for (const c of chunks) s.push(Buffer.from(c, 'latin1'));
  return s.result();
};

test('finds Message-ID, Subject, From and Date across chunk boundaries', () => {
  const r = sniff(['Message-ID:  <abc@ex', 'ample.org> (note)\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n', ' folded\r\nFrom: A <a@x>\r\nDate: Sat, 21 Nov 2026 06:00:00 +0100\r\n\r\nbody Subject: no\r\n']);
  assert.equal(r.messageId, '<abc@example.org>');
  assert.equal(r.subject, 'Grüße folded');
  assert.equal(r.from, 'A <a@x>');
  assert.equal(r.date, '2026-11-21T05:00:00.000Z');
  assert.equal(r.complete, true);
});

test('stops at the limit and never reads body lines as headers', () => {
  const r = sniff(['X-Long: ' + 'a'.repeat(2000) + '\r\nMessage-ID: <late@x>\r\n\r\n'], 1024);
  assert.equal(r.messageId, null);
  assert.equal(r.complete, false);
  const lf = sniff(['Subject: bare LF\n\nMessage-ID: <in-body@x>\n']);
  assert.equal(lf.subject, 'bare LF');
  assert.equal(lf.messageId, null);
});

test('keeps header order and duplicates, skips malformed lines', () => {
  const lines = parseHeaderBlock('Received: a\r\nReceived: b\r\n\tc\r\nnot a header\r\nX-Ü: bad name\r\nTo: x@y\r\n');
  assert.deepEqual(lines, [
    ['Received', 'a'],
    ['Received', 'b c'],
    ['To', 'x@y'],
  ]);
});

test('normalises Message-IDs', () => {
  assert.equal(normaliseMessageId(' <a@b> '), '<a@b>');
  assert.equal(normaliseMessageId('a@b'), '<a@b>');
  assert.equal(normaliseMessageId('   '), null);
});
