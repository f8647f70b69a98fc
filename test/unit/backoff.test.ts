import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_RETRY, nextAttemptAt, retryDelay, retrySchema } from '../../src/delivery/backoff.js';

const mid = () => 0.5; // jitter term vanishes at 0.5
const t0 = new Date('2026-01-01T00:00:00Z');

describe('retry policy', () => {
  it('default schedule is Postmark-like: 10 attempts spread over about 10.5 hours', () => {
    assert.equal(DEFAULT_RETRY.maxAttempts, 10);
    let total = 0;
    for (let n = 2; n <= 10; n++) total += retryDelay(DEFAULT_RETRY, n, mid);
    // 1m + 5m + 10m×3 + 15m + 30m + 1h + 2h = 4h21m before the 10th attempt; the 6h step is past it.
    assert.equal(total, (1 + 5 + 30 + 15 + 30 + 60 + 120) * 60_000);
    assert.ok(DEFAULT_RETRY.maxAge >= 10 * 3_600_000);
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
