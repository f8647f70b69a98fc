import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fallbackFilename, sanitiseFilename } from '../../src/mime/filename.js';

const opts = { maxLength: 200, index: 3, contentType: 'application/octet-stream' };
const clean = (name: string | null, o: Partial<typeof opts> = {}) => sanitiseFilename(name, { ...opts, ...o });

/** Properties every sanitised name must have, whatever came in. */
function assertSafe(out: string, max = 200): void {
  assert.ok(out.length > 0, 'never empty');
  assert.doesNotMatch(out, /[/\\]/, 'no path separators');
  assert.doesNotMatch(out, /\.\./, 'no ..');
  assert.doesNotMatch(out, /[\u0000-\u001f\u007f-\u009f]/, 'no control characters or NUL');
  assert.doesNotMatch(out, /[\u200e\u200f\u202a-\u202e\u2066-\u2069]/, 'no bidi controls');
  assert.doesNotMatch(out, /[. ]$/, 'no trailing dot or space');
  assert.doesNotMatch(out, /^\./, 'no leading dot');
  assert.doesNotMatch(out, /^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\.|$)/i, 'no Windows device name');
  assert.ok(Buffer.byteLength(out) <= max, `at most ${max} bytes: ${out}`);
}

describe('sanitiseFilename', () => {
  const table: [string, string][] = [
    ['report.pdf', 'report.pdf'],
    ['Übersicht 2025.pdf', 'Übersicht 2025.pdf'],
    ['../../etc/passwd', 'passwd'],
    ['..\\..\\windows\\system32\\evil.dll', 'evil.dll'],
    ['C:\\Users\\bob\\Desktop\\plan.docx', 'plan.docx'],
    ['/absolute/path.txt', 'path.txt'],
    ['a..b.txt', 'a.b.txt'],
    ['..', 'attachment-3.bin'],
    ['invoice\u202efdp.exe', 'invoicefdp.exe'],
    ['\u2066iso\u2069late\u200e\u200f.txt', 'isolate.txt'],
    ['nul\u0000byte.txt', 'nulbyte.txt'],
    ['bell\u0007\u001b[31mred.txt', 'bell[31mred.txt'],
    ['tab\there\r\nBcc: x@evil.example', 'tab here Bcc_ x@evil.example'],
    ['CON', '_CON'],
    ['con.txt', '_con.txt'],
    ['nul.tar.gz', '_nul.tar.gz'],
    ['COM1.log', '_COM1.log'],
    ['lpt9', '_lpt9'],
    ['Aux.', '_Aux'],
    ['console.txt', 'console.txt'],
    ['trailing dots... ', 'trailing dots'],
    ['evil.exe.', 'evil.exe'],
    ['.hidden', 'hidden'],
    ['what?*<>|".txt', 'what______.txt'],
    ['   ', 'attachment-3.bin'],
    ['\u202e', 'attachment-3.bin'],
  ];
  for (const [input, want] of table) {
    test(`makes ${JSON.stringify(input)} into ${JSON.stringify(want)}`, () => {
      const out = clean(input);
      assert.equal(out, want);
      assertSafe(out);
    });
  }

  test('caps the length in UTF-8 bytes and keeps the extension', () => {
    const out = clean(`${'a'.repeat(400)}.pdf`, { maxLength: 64 });
    assert.equal(out, `${'a'.repeat(60)}.pdf`);
    const wide = clean(`${'€'.repeat(100)}.txt`, { maxLength: 64 });
    assert.ok(Buffer.byteLength(wide) <= 64);
    assert.ok(wide.endsWith('.txt'));
    assert.doesNotMatch(wide, /\ufffd/, 'no character cut in half');
    assertSafe(wide, 64);
  });

  test('does not let a giant extension eat the name', () => {
    const out = clean(`x.${'e'.repeat(300)}`, { maxLength: 64 });
    assert.ok(out.startsWith('x.'));
    assertSafe(out, 64);
  });

  test('gives a fallback name from the content type when there is none', () => {
    assert.equal(clean(null, { contentType: 'image/png' }), 'attachment-3.png');
    assert.equal(clean('', { contentType: 'application/pdf; name=x' }), 'attachment-3.pdf');
    assert.equal(fallbackFilename(7, 'application/x-unknown'), 'attachment-7.bin');
  });

  test('every hostile input comes out safe', () => {
    const nasty = ['/', '\\', '.', '...', ' . ', 'PRN.', 'a/../../b', '\u0000', 'x\u202e\u202d\u202c', 'com9 .txt', `${'.'.repeat(300)}x`];
    for (const n of nasty) assertSafe(clean(n));
  });
});
