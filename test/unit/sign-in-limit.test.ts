import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SignInLimit } from '../../src/api/sign-in-limit.js';

describe('SignInLimit', () => {
  it('refuses a key after `limit` failures until its minute ends, and says how long', () => {
    const l = new SignInLimit(3);
    const t0 = 1_000_000;
    for (let i = 0; i < 3; i++) {
      assert.equal(l.retryAfter('user:vera', t0 + i), 0);
      l.fail('user:vera', t0 + i);
    }
    assert.equal(l.retryAfter('user:vera', t0 + 10), 60);
    assert.equal(l.retryAfter('user:vera', t0 + 59_500), 1);
    assert.equal(l.retryAfter('user:vera', t0 + 60_000), 0);
    // Other keys are counted on their own.
    assert.equal(l.retryAfter('user:otto', t0 + 10), 0);
  });

  it('a success clears the key', () => {
    const l = new SignInLimit(2);
    l.fail('user:a', 0);
    l.fail('user:a', 1);
    assert.ok(l.retryAfter('user:a', 2) > 0);
    l.succeed('user:a');
    assert.equal(l.retryAfter('user:a', 3), 0);
  });

  it('forgive takes back one try, leaving the others counted', () => {
    const l = new SignInLimit(2);
    l.fail('ip:a', 0);
    l.fail('ip:a', 1);
    assert.ok(l.retryAfter('ip:a', 2) > 0);
    l.forgive('ip:a');
    assert.equal(l.retryAfter('ip:a', 3), 0);
    l.fail('ip:a', 4);
    assert.ok(l.retryAfter('ip:a', 5) > 0);
  });
});
