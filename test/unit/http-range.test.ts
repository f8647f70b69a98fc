import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyReply, FastifyRequest } from 'fastify';
import fc from 'fast-check';
import { requestedRange } from '../../src/api/range.js';
import { MailError } from '../../src/core/errors.js';

/** The parts of a request and reply requestedRange looks at. */
function ask(range: string | undefined, size: number, extra: Record<string, string> = {}) {
  const headers: Record<string, string> = { ...extra };
  const set: Record<string, string> = {};
  if (range !== undefined) headers.range = range;
  const request = { method: 'GET', headers } as unknown as FastifyRequest;
  const reply = { header: (k: string, v: string) => ((set[k] = v), reply) } as unknown as FastifyReply;
  try {
    return { range: requestedRange(request, reply, size), set };
  } catch (err) {
    return { err, set };
  }
}

test('a Range header is read as RFC 9110 §14.1.2 says: first-last, first-, -suffix, clamped to the size', () => {
  assert.deepEqual(ask('bytes=0-0', 10).range, { start: 0, end: 0 });
  assert.deepEqual(ask('bytes=2-5', 10).range, { start: 2, end: 5 });
  assert.deepEqual(ask('bytes=2-500', 10).range, { start: 2, end: 9 });
  assert.deepEqual(ask('bytes=7-', 10).range, { start: 7, end: 9 });
  assert.deepEqual(ask('bytes=-3', 10).range, { start: 7, end: 9 });
  assert.deepEqual(ask('bytes=-30', 10).range, { start: 0, end: 9 });
  // Ignored (the whole body is sent): no header, several ranges, another unit, an If-Range, last before first.
  for (const h of [undefined, 'bytes=0-1,3-4', 'items=0-1', 'bytes=5-2', 'bytes=-', 'bytes=a-b']) assert.equal(ask(h, 10).range, undefined, String(h));
  assert.equal(ask('bytes=0-1', 10, { 'if-range': '"x"' }).range, undefined);
  // Past the end: 416 with the size.
  const past = ask('bytes=10-', 10);
  assert.ok(past.err instanceof MailError && past.err.code === 'RANGE_NOT_SATISFIABLE');
  assert.equal(past.set['content-range'], 'bytes */10');
});

test('whatever the Range header, the answer is the whole body, a range inside the blob, or 416', () => {
  const header = fc.oneof(
    fc.string(),
    fc.tuple(fc.option(fc.nat(), { nil: undefined }), fc.option(fc.nat(), { nil: undefined })).map(([a, b]) => `bytes=${a ?? ''}-${b ?? ''}`),
  );
  fc.assert(
    fc.property(header, fc.nat(1 << 30), (h, size) => {
      const r = ask(h, size);
      if (r.err) return r.err instanceof MailError && r.err.code === 'RANGE_NOT_SATISFIABLE' && r.set['content-range'] === `bytes */${size}`;
      if (!r.range) return true;
      return Number.isSafeInteger(r.range.start) && r.range.start >= 0 && r.range.start <= r.range.end && r.range.end < size;
    }),
  );
});
