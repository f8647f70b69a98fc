import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hideQuotedSpaces } from '../../src/ingress/smtp-address.js';

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
