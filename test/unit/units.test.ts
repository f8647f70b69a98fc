import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration, parseSize } from '../../src/config/units.js';

test('sizes read as operators write them', () => {
  assert.equal(parseSize('200MiB'), 200 * 1024 * 1024);
  assert.equal(parseSize('10 MB'), 10_000_000);
  assert.equal(parseSize('512KiB'), 524_288);
  assert.equal(parseSize('4096'), 4096);
  assert.equal(parseSize(42), 42);
  assert.equal(parseSize('1.5GiB'), 1.5 * 1024 ** 3);
  for (const bad of ['', 'MiB', '10 parsecs', '-1MB', '1e3']) assert.throws(() => parseSize(bad), /not a size/);
});

test('durations read as operators write them', () => {
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('2d'), 172_800_000);
  assert.equal(parseDuration('1500'), 1500);
  assert.equal(parseDuration('10.5h'), 37_800_000);
  for (const bad of ['', 's', '10 sec', '1h 30m', '5w']) assert.throws(() => parseDuration(bad), /not a duration/);
});
