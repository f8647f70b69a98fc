import assert from 'node:assert/strict';
import { test } from 'node:test';
import { retentionPolicy } from '../../src/app.js';
import { ConfigError, validateConfig } from '../../src/config/load.js';

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    return e.problems;
  }
  assert.fail('expected the config to be refused');
}

const route = (name: string, retention?: object) => ({ name, match: { recipient: `${name}@example.org` }, deliver: [{ discard: {} }], ...(retention ? { retention } : {}) });

test('retention: nothing is removed by default; limits in units; each route with its own retention is its own policy', () => {
  const none = validateConfig({});
  assert.deepEqual(retentionPolicy(none), { defaults: { maxAge: undefined, maxMessages: undefined, maxBytes: undefined }, routes: {} });
  assert.equal(none.retention.interval, 3_600_000);
  assert.equal(none.retention.batchSize, 500);
  const c = validateConfig({
    retention: { maxAge: '30d', maxMessages: 1000, maxBytes: '2GiB', interval: '15m' },
    routes: [route('keep', { maxAge: 0 }), route('plain'), route('alerts', { maxAge: '2d', maxBytes: '10MiB' })],
  });
  assert.deepEqual(retentionPolicy(c), {
    defaults: { maxAge: 30 * 86_400_000, maxMessages: 1000, maxBytes: 2 * 1024 ** 3 },
    routes: { keep: { maxAge: 0 }, alerts: { maxAge: 2 * 86_400_000, maxBytes: 10 * 1024 ** 2 } },
  });
  assert.equal(c.retention.interval, 900_000);
});

test('retention: a bad limit is refused under its key path', () => {
  const top = problemsOf(() => validateConfig({ retention: { maxAge: '30 days' } }));
  assert.ok(top.some((p) => p.includes('retention.maxAge') && p.includes('not a duration')), top.join('\n'));
  const neg = problemsOf(() => validateConfig({ retention: { maxMessages: -1 } }));
  assert.ok(neg.some((p) => p.includes('retention.maxMessages')), neg.join('\n'));
  const typo = problemsOf(() => validateConfig({ routes: [route('r', { maxAges: '1d' })] }));
  assert.ok(typo.some((p) => p.includes('routes[0].retention.maxAges')), typo.join('\n'));
  const batch = problemsOf(() => validateConfig({ retention: { batchSize: 0 } }));
  assert.ok(batch.some((p) => p.includes('retention.batchSize')), batch.join('\n'));
});
