import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanFilename, contentDisposition, safeMediaType } from '../../src/api/content-headers.js';

test('Content-Disposition: plain ASCII names need only filename=', () => {
  assert.equal(contentDisposition('attachment', 'report.pdf'), 'attachment; filename="report.pdf"');
  assert.equal(contentDisposition('inline', 'logo.png'), 'inline; filename="logo.png"');
});

test("Content-Disposition: non-ASCII names get an ASCII fallback and filename*=UTF-8'' (RFC 6266, RFC 8187)", () => {
  assert.equal(
    contentDisposition('attachment', 'Rechnung März.pdf'),
    `attachment; filename="Rechnung M_rz.pdf"; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf`,
  );
  assert.equal(contentDisposition('attachment', '日本.txt'), `attachment; filename="__.txt"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt`);
  // RFC 8187 attr-char excludes ' ( ) *: they must be percent-encoded in filename*.
  assert.equal(
    contentDisposition('attachment', "it's (1)*é"),
    `attachment; filename="it's (1)*_"; filename*=UTF-8''it%27s%20%281%29%2A%C3%A9`,
  );
});

test('Content-Disposition: quotes, backslashes and % never reach the quoted fallback', () => {
  const h = contentDisposition('attachment', 'a"b\\c%41.txt');
  assert.match(h, /^attachment; filename="a_b_c_41\.txt"; filename\*=UTF-8''a%22b%5Cc%2541\.txt$/);
});

test('file names lose path separators, controls, bidi overrides and leading dots', () => {
  assert.equal(cleanFilename('../../etc/passwd', 'x'), '_.._etc_passwd');
  assert.equal(cleanFilename('evil\u202Egpj.exe', 'x'), 'evil_gpj.exe');
  assert.equal(cleanFilename('a\r\nX-Injected: 1', 'x'), 'a__X-Injected: 1');
  assert.equal(cleanFilename('nul\0byte', 'x'), 'nul_byte');
  assert.equal(cleanFilename('.htaccess', 'x'), 'htaccess');
  assert.equal(cleanFilename('C:\\Windows\\x.dll', 'x'), 'C:_Windows_x.dll');
  assert.equal(cleanFilename(null, 'part-3'), 'part-3');
  assert.equal(cleanFilename('...', 'part-3'), 'part-3');
  assert.equal(cleanFilename('a'.repeat(500), 'x').length, 200);
  for (const name of ['../../etc/evil\u202Egpj.exe"\r\nX: 1', '\u2066x\u2069', 'a\u200bb']) {
    assert.doesNotMatch(contentDisposition('attachment', cleanFilename(name, 'x')), /[\r\n/\\\u202E\u2066\u2069\u200b]|\.\.\//);
  }
});

test('media types from mail are checked before they become a Content-Type header', () => {
  assert.equal(safeMediaType('image/PNG'), 'image/png');
  assert.equal(safeMediaType('text/plain;charset="utf-8"'), 'text/plain; charset="utf-8"');
  assert.equal(safeMediaType('application/pdf; name=x.pdf'), 'application/pdf; name=x.pdf');
  for (const bad of ['', null, undefined, 'text', 'text/html\r\nX-Injected: 1', 'image/png; name="a\r\nb"', 'a b/c', 'text/plain; name="ü"']) {
    assert.equal(safeMediaType(bad), 'application/octet-stream', String(bad));
  }
});
