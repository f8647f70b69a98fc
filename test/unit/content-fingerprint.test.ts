import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ContentFingerprint, TRACE_FIELDS } from '../../src/mime/content-fingerprint.js';

/** The fingerprint of `raw` fed in the given chunk sizes (cycled). */
function fingerprint(raw: Buffer, sizes: number[] = [raw.length || 1]): string {
  const f = new ContentFingerprint(4096);
  for (let at = 0, i = 0; at < raw.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]);
    f.push(raw.subarray(at, at + n));
    at += n;
  }
  return f.digest();
}

const token = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/);
const value = fc.stringMatching(/^[ -~]{0,60}$/).map((v) => v.trim());
const field = fc
  .tuple(token, value)
  .filter(([name]) => !TRACE_FIELDS.has(name.toLowerCase()))
  .map(([name, v]) => `${name}: ${v}`);
const traceField = fc
  .tuple(fc.constantFrom(...TRACE_FIELDS), value, fc.boolean())
  // Relays fold long trace fields: a continuation line belongs to its field.
  .map(([name, v, folded]) => `${name.replace(/^./, (c) => c.toUpperCase())}: ${v}${folded ? '\n\tby relay.example (Postfix) with ESMTP id 4711' : ''}`);
const bodyLine = fc.stringMatching(/^[ -~\t]{0,80}$/);

const message = fc.record({
  fields: fc.array(field, { minLength: 1, maxLength: 12 }),
  body: fc.array(bodyLine, { maxLength: 20 }),
});

const build = (fields: string[], body: string[], eol: string) => Buffer.from(`${fields.join('\n')}\n\n${body.join('\n')}`.replace(/\n/g, eol), 'latin1');

describe('the content fingerprint of a message without its trace fields', () => {
  it('is the same whatever trace fields a relay adds, wherever, in CRLF or LF, in any chunks', () => {
    fc.assert(
      fc.property(
        message,
        fc.array(fc.tuple(fc.nat(), traceField), { maxLength: 8 }),
        fc.constantFrom('\r\n', '\n'),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 5 }),
        ({ fields, body }, traces, eol, sizes) => {
          const relayed = [...fields];
          for (const [at, t] of traces) relayed.splice(at % (relayed.length + 1), 0, t);
          assert.equal(fingerprint(build(relayed, body, eol), sizes), fingerprint(build(fields, body, '\r\n')));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('differs when the body differs by one byte', () => {
    fc.assert(
      fc.property(message, fc.nat(), fc.integer({ min: 0x21, max: 0x7e }), ({ fields, body }, at, byte) => {
        const a = build(fields, [...body, 'end'], '\r\n');
        const b = Buffer.from(a);
        const bodyStart = a.indexOf('\r\n\r\n') + 4;
        const i = bodyStart + (at % (a.length - bodyStart));
        fc.pre(b[i] !== byte && b[i] !== 0x0d && b[i] !== 0x0a);
        b[i] = byte;
        assert.notEqual(fingerprint(a), fingerprint(b));
      }),
      { numRuns: 300 },
    );
  });

  it('differs when a non-trace field differs (a reused Message-ID with another Subject is another message)', () => {
    const a = build(['Message-ID: <same@x>', 'Subject: invoice 1'], ['hello'], '\r\n');
    const b = build(['Message-ID: <same@x>', 'Subject: invoice 2'], ['hello'], '\r\n');
    assert.notEqual(fingerprint(a), fingerprint(b));
  });

  it('tells a CR inside a body line from a line end, across chunk boundaries', () => {
    const a = Buffer.from('Subject: x\r\n\r\na\rb\r\n');
    const b = Buffer.from('Subject: x\r\n\r\na\nb\r\n');
    for (const size of [1, 2, 3, 5, 100]) assert.notEqual(fingerprint(a, [size]), fingerprint(b, [size]));
    assert.equal(fingerprint(a, [1]), fingerprint(a, [100]));
  });
});
