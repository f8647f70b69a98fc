import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MailError } from '../../src/core/errors.js';
import { parseSearch } from '../../src/core/message-search.js';

describe('message search syntax', () => {
  it('reads every key, negation, quotes and free text', () => {
    assert.deepEqual(parseSearch('from:alice -status:delivered subject:"big news" has:attachment hello -world'), [
      { field: 'from', value: 'alice', negate: false },
      { field: 'status', value: 'delivered', negate: true },
      { field: 'subject', value: 'big news', negate: false },
      { field: 'has', value: 'attachment', negate: false },
      { field: 'text', value: 'hello', negate: false },
      { field: 'text', value: 'world', negate: true },
    ]);
    assert.deepEqual(
      parseSearch('to:bob rcpt:orders message-id:<a@b> route:hooks ingress:smtp').map((t) => [t.field, t.value]),
      [['to', 'bob'], ['rcpt', 'orders'], ['message-id', '<a@b>'], ['route', 'hooks'], ['ingress', 'smtp']],
    );
  });

  it('normalises sizes to bytes and dates to instants', () => {
    assert.deepEqual(parseSearch('larger:1M smaller:500k larger:2048').map((t) => t.value), ['1048576', '512000', '2048']);
    assert.deepEqual(parseSearch('after:2026-01-31 before:2026-02-01T12:00:00Z').map((t) => t.value), ['2026-01-31T00:00:00.000Z', '2026-02-01T12:00:00.000Z']);
  });

  it('a word with an unknown key is free text, so "re: hello" searches for both words', () => {
    assert.deepEqual(parseSearch('re: hello'), [
      { field: 'text', value: 're:', negate: false },
      { field: 'text', value: 'hello', negate: false },
    ]);
  });

  it('bad values are INVALID_REQUEST naming the term', () => {
    for (const [q, words] of [
      ['larger:huge', /not a size/],
      ['before:yesterday', /not a date/],
      ['has:wings', /has:wings/],
      ['from:', /needs a value/],
    ] as const) {
      assert.throws(() => parseSearch(q), (err: unknown) => err instanceof MailError && err.code === 'INVALID_REQUEST' && words.test(err.message), q);
    }
  });

  it('any input either parses or is refused as INVALID_REQUEST: never another error', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (q) => {
        try {
          const terms = parseSearch(q);
          for (const t of terms) assert.ok(t.value.length > 0);
        } catch (err) {
          assert.ok(err instanceof MailError && err.code === 'INVALID_REQUEST', String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
