import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { hashPassword, verifyPassword } from '../../src/core/passwords.js';
import { scryptCost } from '../../src/store/users.js';

// N=2^10: the same code path as production's 2^15 at a 32nd of the work, so the property runs in well under a second.
const cheap = scryptCost(10);

describe('scrypt password hashes (console users)', () => {
  it('a hash verifies its own password and refuses any other', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 64, unit: 'grapheme' }), fc.string({ minLength: 1, maxLength: 64 }), async (pw, other) => {
        const hash = await hashPassword(pw, cheap);
        assert.match(hash, /^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);
        assert.equal(await verifyPassword(pw, hash), true);
        if (other !== pw) assert.equal(await verifyPassword(other, hash), false);
        assert.equal(await verifyPassword(`${pw} `, hash), false);
      }),
      { numRuns: 25 },
    );
  });

  it('salts each hash: the same password never hashes the same twice', async () => {
    const [a, b] = await Promise.all([hashPassword('same password', cheap), hashPassword('same password', cheap)]);
    assert.notEqual(a, b);
  });

  it('takes the production cost (N=2^15, r=8) within the memory it allows, and keeps the cost in the hash', async () => {
    const hash = await hashPassword('production cost', scryptCost(15));
    assert.match(hash, /^scrypt\$32768\$8\$1\$/);
    assert.equal(await verifyPassword('production cost', hash), true);
  });
});
