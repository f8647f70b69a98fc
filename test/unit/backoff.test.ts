import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_RETRY, retrySchema } from '../../src/config/retry.js';
import { nextAttemptAt, retryDelay } from '../../src/delivery/backoff.js';

const mid = () => 0.5; // jitter term vanishes at 0.5
const t0 = new Date('2026-01-01T00:00:00Z');

describe('retry policy', () => {
  it('default schedule spans about three days: 14 attempts, the last ~58 h after the first, dead at 72 h', () => {
    assert.equal(DEFAULT_RETRY.maxAttempts, 14);
    let total = 0;
    for (let n = 2; n <= 14; n++) total += retryDelay(DEFAULT_RETRY, n, mid);
    // 1m + 5m + 10m + 15m + 30m + 1h + 2h + 4h + 6h + 8h + 12h×3 = 58 h 1 min before the 14th attempt.
    assert.equal(total, (1 + 5 + 10 + 15 + 30) * 60_000 + (1 + 2 + 4 + 6 + 8 + 36) * 3_600_000);
    assert.equal(DEFAULT_RETRY.maxAge, 72 * 3_600_000);
    // Even with the jitter at its widest (+20 %) every scheduled attempt fits within maxAge.
    let t = new Date(t0);
    for (let n = 2; n <= 14; n++) {
      const at = nextAttemptAt(DEFAULT_RETRY, n, t0, t, 0, () => 0.999999);
      assert.ok(at, `attempt ${n} is scheduled`);
      t = at;
    }
    assert.equal(nextAttemptAt(DEFAULT_RETRY, 15, t0, t), null, 'no 15th attempt');
  });

  it('a route keeps Postmark\'s ~10.5 h by saying so in its own retry:', () => {
    const postmark = retrySchema.parse({ schedule: ['1m', '5m', '10m', '10m', '10m', '15m', '30m', '1h', '2h', '6h'], maxAttempts: 11, maxAge: '10h30m' });
    let total = 0;
    for (let n = 2; n <= 11; n++) total += retryDelay(postmark, n, mid);
    assert.equal(total, (1 + 5 + 30 + 15 + 30 + 60 + 120 + 360) * 60_000);
  });

  it('explicit schedule: delays before attempts 2, 3, …; the last one repeats', () => {
    const p = retrySchema.parse({ schedule: ['50ms', '2s'], jitter: 0 });
    assert.equal(retryDelay(p, 2), 50);
    assert.equal(retryDelay(p, 3), 2000);
    assert.equal(retryDelay(p, 9), 2000);
  });

  it('exponential backoff grows by factor and stops at maxDelay', () => {
    const p = retrySchema.parse({ initialDelay: '1s', factor: 3, maxDelay: '5s', jitter: 0 });
    assert.deepEqual([2, 3, 4, 5].map((n) => retryDelay(p, n)), [1000, 3000, 5000, 5000]);
  });

  it('jitter spreads delays within ± the fraction', () => {
    const p = retrySchema.parse({ schedule: ['10s'], jitter: 0.2 });
    assert.equal(retryDelay(p, 2, () => 0), 8000);
    assert.equal(retryDelay(p, 2, () => 0.999999), 12000);
    const seen = new Set(Array.from({ length: 50 }, () => retryDelay(p, 2)));
    assert.ok(seen.size > 10, 'random jitter gives different delays');
  });

  it('gives up past maxAttempts', () => {
    const p = retrySchema.parse({ schedule: ['1s'], maxAttempts: 3, jitter: 0 });
    assert.ok(nextAttemptAt(p, 3, t0, t0));
    assert.equal(nextAttemptAt(p, 4, t0, t0), null);
  });

  it('gives up when the retry would fall past maxAge', () => {
    const p = retrySchema.parse({ schedule: ['1h'], maxAge: '90m', jitter: 0 });
    assert.deepEqual(nextAttemptAt(p, 2, t0, t0), new Date(t0.getTime() + 3_600_000));
    const later = new Date(t0.getTime() + 3_600_000);
    assert.equal(nextAttemptAt(p, 3, t0, later), null);
  });

  it("an upstream's Retry-After is a floor, never shortened by the schedule", () => {
    const p = retrySchema.parse({ schedule: ['50ms'], jitter: 0 });
    assert.deepEqual(nextAttemptAt(p, 2, t0, t0, 30_000), new Date(t0.getTime() + 30_000));
    assert.deepEqual(nextAttemptAt(p, 2, t0, t0, 10), new Date(t0.getTime() + 50));
  });

  it('rejects nonsense at config load', () => {
    assert.throws(() => retrySchema.parse({ maxAttempts: 0 }));
    assert.throws(() => retrySchema.parse({ schedule: [] }));
    assert.throws(() => retrySchema.parse({ schedule: ['soon'] }));
    assert.throws(() => retrySchema.parse({ tries: 3 }), 'unknown keys are errors');
  });
});
