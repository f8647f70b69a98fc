import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newId } from '../../src/core/ids.js';

test('ids are unique, 26 characters, and sort in creation order as strings', () => {
  const ids = Array.from({ length: 5000 }, () => newId());
  assert.equal(new Set(ids).size, ids.length);
  for (const id of ids) assert.match(id, /^[0-9a-hjkmnp-tv-z]{26}$/);
  assert.deepEqual([...ids].sort(), ids);
});
