import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hideQuotedSpaces, isMailbox, unknownParameter } from '../../src/ingress/smtp-address.js';

test('hides spaces only inside a quoted local part, and restores them in the address', () => {
  const { text, restore } = hideQuotedSpaces('TO:<"Jan Novak/ACME/Sales/+420123456789"@fax> NOTIFY=NEVER');
  assert.equal(text.split(/\s+/).length, 2, 'the address is one word for the library');
  assert.equal(restore('"Jan\uE000Novak/ACME/Sales/+420123456789"@fax'), '"Jan Novak/ACME/Sales/+420123456789"@fax');
});

test('leaves unquoted and malformed commands as they are', () => {
  for (const cmd of ['TO:<a b@x>', 'TO:<a@x> SIZE=10', 'TO:<"unterminated@x>', 'FROM:<>']) {
    assert.equal(hideQuotedSpaces(cmd).text, cmd);
  }
});

test('isMailbox takes RFC 5321 addresses (UTF-8 too) and refuses what is none', () => {
  for (const ok of ['a@b', 'jan.novak@example.org', '"Jan Novak"@fax', 'x+y@[192.0.2.1]', 'jörg@bücher.example', "o'neil@x-y.example"]) {
    assert.ok(isMailbox(ok), ok);
  }
  for (const bad of ['a b@@c', 'a b@c', 'a@@c', '@c', 'a@', 'a', 'a..b@c', '.a@c', 'a@-c', 'a@c d', '<a@c>', 'a@c\r\nX: y']) {
    assert.ok(!isMailbox(bad), bad);
  }
});

test('unknownParameter names the first MAIL/RCPT parameter of no extension we offer', () => {
  assert.equal(unknownParameter('mail', { SIZE: '10', BODY: '8BITMIME', SMTPUTF8: true }), undefined);
  assert.equal(unknownParameter('mail', { SIZE: '10', FOO: 'bar' }), 'FOO');
  assert.equal(unknownParameter('mail', false), undefined);
  assert.equal(unknownParameter('rcpt', { NOTIFY: 'NEVER' }), 'NOTIFY');
});
