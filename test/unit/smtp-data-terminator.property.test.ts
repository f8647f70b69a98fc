import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { acceptSpaceDotTerminator, rewriteSpaceDot } from '../../src/ingress/smtp-data-terminator.js';

/**
 * The CRLF SP . CRLF end of DATA (smtp.nonstandardDataTerminator) must be seen wherever TCP
 * cuts the bytes: fed in any chunks, the parser gets what it gets from the whole in one piece.
 */
function feed(chunks: Buffer[], dataMode = true): { got: Buffer; writes: number } {
  const seen: Buffer[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      seen.push(c);
      cb();
    },
  }) as Writable & { _dataMode?: boolean };
  sink._dataMode = dataMode;
  const p = acceptSpaceDotTerminator(sink, () => true);
  for (const c of chunks) p.write(c);
  return { got: Buffer.concat(seen), writes: seen.length };
}

describe('CRLF SP . CRLF as the end of DATA (fast-check)', () => {
  it('gives the parser the same bytes whatever the chunking, the held tail aside', () => {
    const bytes = fc.array(fc.constantFrom('\r', '\n', ' ', '.', 'a'), { maxLength: 40 }).map((a) => Buffer.from(a.join(''), 'latin1'));
    fc.assert(
      fc.property(bytes, fc.array(fc.nat(), { maxLength: 6 }), (whole, cutsRaw) => {
        const cuts = [...new Set(cutsRaw.map((c) => c % (whole.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let from = 0;
        for (const c of [...cuts, whole.length]) {
          chunks.push(whole.subarray(from, c));
          from = c;
        }
        const one = rewriteSpaceDot(Buffer.alloc(0), whole);
        const many = feed(chunks).got;
        // What one piece holds back at its end, many pieces hold back too (at most that much more).
        assert.ok(Buffer.concat([one.out, one.held]).subarray(0, many.length).equals(many), JSON.stringify(whole.toString('latin1')));
        assert.ok(many.length >= one.out.length, 'nothing more is held than the whole holds');
      }),
      { numRuns: 3000 },
    );
  });

  it('turns CRLF SP . CRLF into CRLF . CRLF and leaves the rest as it is', () => {
    assert.equal(feed([Buffer.from('a\r\n .\r\n')]).got.toString(), 'a\r\n.\r\n');
    assert.equal(feed([Buffer.from('a\r\n'), Buffer.from(' .'), Buffer.from('\r\n')]).got.toString(), 'a\r\n.\r\n');
    assert.equal(feed([Buffer.from('a\r\n .x\r\n \tfolded\r\n')]).got.toString(), 'a\r\n .x\r\n \tfolded\r\n');
    assert.equal(feed([Buffer.from('a\n .\n')]).got.toString(), 'a\n .\n', 'bare LF forms stay for the line-ending guard');
  });

  it('touches nothing outside DATA', () => {
    assert.equal(feed([Buffer.from('NOOP\r\n .\r\n')], false).got.toString(), 'NOOP\r\n .\r\n');
  });
});
