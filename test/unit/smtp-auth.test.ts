import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hashPassword, safeEqual, verifyPassword } from '../../src/core/passwords.js';

describe('SMTP AUTH passwords (scrypt)', () => {
  test('verifies the password a hash was made from, and no other', async () => {
    const h = await hashPassword('correct horse');
    assert.match(h, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    assert.equal(await verifyPassword('correct horse', h), true);
    assert.equal(await verifyPassword('correct horsE', h), false);
    assert.equal(await verifyPassword('', h), false);
  });

  test('salts every hash: the same password hashes differently', async () => {
    assert.notEqual(await hashPassword('x'), await hashPassword('x'));
  });

  test('never matches a malformed or truncated hash', async () => {
    const h = await hashPassword('pw');
    assert.equal(await verifyPassword('pw', 'plain-text-password'), false);
    assert.equal(await verifyPassword('pw', h.replace(/\$[^$]+$/, '$AAAA')), false);
    assert.equal(await verifyPassword('pw', h.replace(/^scrypt/, 'bcrypt')), false);
  });

  test('compares tokens in full whatever their lengths', () => {
    assert.equal(safeEqual('abc', 'abc'), true);
    assert.equal(safeEqual('abc', 'abd'), false);
    assert.equal(safeEqual('abc', 'abcd'), false);
    assert.equal(safeEqual('', ''), true);
    assert.equal(safeEqual('abc\0', 'abc'), false);
  });
});
