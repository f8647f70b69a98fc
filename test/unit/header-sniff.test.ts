import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeWords, HeaderSniffer, normaliseMessageId, parseHeaderBlock } from '../../src/mime/header-sniff.js';

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

test('raw 8-bit octets inside a Q encoded-word are read in the charset the word names', () => {
  // Mailers write `=?iso-8859-1?Q?Fr\xF6sche?=` with the octet unencoded (RFC 2047 §5 forbids it).
  const latin = sniff(['Subject: =?iso-8859-1?Q?Die_Hasen_und_die_Fr\xF6sche?=\r\n\r\n']);
  assert.equal(latin.subject, 'Die Hasen und die Frösche');
  // Raw UTF-8 in a UTF-8 word, and raw UTF-8 beside a word (RFC 6532), read as before.
  const utf8 = sniff([Buffer.from('Subject: =?utf-8?Q?Gr=C3=BC?= Grüße =?utf-8?Q?Fr\u00f6sche?=\r\n\r\n', 'utf8').toString('latin1')]);
  assert.equal(utf8.subject, 'Grü Grüße Frösche');
});

test('a raw octet in a Q word decodes as its escaped form would, for any text and charset', () => {
  fc.assert(
    fc.property(
      fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x3f && c !== 0x3d && c !== 0x5f && c !== 0x7f).map((c) => String.fromCharCode(c)), maxLength: 40 }),
      fc.constantFrom('iso-8859-1', 'windows-1252', 'utf-8'),
      (text, charset) => {
        const escaped = [...text].map((c) => (c.charCodeAt(0) >= 0x80 || c === ' ' ? `=${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}` : c)).join('');
        const raw = text.replace(/ /g, '_');
        const a = sniff([`Subject: =?${charset}?Q?${raw}?=\r\n\r\n`]).subject;
        const b = sniff([`Subject: =?${charset}?Q?${escaped}?=\r\n\r\n`]).subject;
        assert.equal(a, b);
      },
    ),
  );
});

test('UTF-7 encoded words are decoded (RFC 2152), as plain text', () => {
  assert.equal(decodeWords('=?utf-7?Q?Die_Hasen_und_die_Fr+APY-sche_=28Microsoft_Outlook_00=29?='), 'Die Hasen und die Frösche (Microsoft Outlook 00)');
  assert.equal(decodeWords('=?UTF-7?B?' + Buffer.from('Fr+APY-sche').toString('base64') + '?= x'), 'Frösche x');
  // Markup in UTF-7 is only text: what shows a subject escapes it like any other `<`.
  assert.equal(decodeWords('=?utf-7?Q?+ADw-b+AD4-?='), '<b>');
});
