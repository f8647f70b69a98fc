import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MailError } from '../../src/core/errors.js';
import { LineEndingGuard } from '../../src/ingress/smtp-data.js';

/** Feed `chunks` through a guard; returns what it passes on, or the MailError code it threw. */
function run(mode: 'reject' | 'normalize', chunks: string[]): string {
  const g = new LineEndingGuard(mode);
  try {
    const out = chunks.map((c) => g.push(Buffer.from(c, 'latin1')).toString('latin1')).join('');
    return out + (g.end()?.toString('latin1') ?? '');
  } catch (err) {
    assert.ok(err instanceof MailError);
    return `!${err.code} ${err.status}`;
  }
}

describe('bare line-ending guard for DATA', () => {
  test('passes CRLF text through untouched, also when CR and LF fall in different chunks', () => {
    assert.equal(run('reject', ['a\r\nb\r\n']), 'a\r\nb\r\n');
    assert.equal(run('reject', ['a\r', '\nb\r', '\n']), 'a\r\nb\r\n');
    assert.equal(run('reject', ['a\r', '', '\n']), 'a\r\n');
  });

  test('rejects a bare LF, a bare CR, and a CR left at the end, with 5.5.2', () => {
    assert.equal(run('reject', ['a\nb\r\n']), '!BARE_LINE_ENDING 5.5.2');
    assert.equal(run('reject', ['\nb\r\n']), '!BARE_LINE_ENDING 5.5.2');
    assert.equal(run('reject', ['a\r\n', '\nb']), '!BARE_LINE_ENDING 5.5.2');
    assert.equal(run('reject', ['a\rb\r\n']), '!BARE_LINE_ENDING 5.5.2');
    assert.equal(run('reject', ['a\r', 'b\r\n']), '!BARE_LINE_ENDING 5.5.2');
    assert.equal(run('reject', ['a\r\n\r']), '!BARE_LINE_ENDING 5.5.2');
    assert.equal(run('reject', ['hello\r.\rMAIL FROM:<x>\r\n']), '!BARE_LINE_ENDING 5.5.2');
  });

  test('normalize rewrites every bare ending to CRLF, across chunk boundaries', () => {
    assert.equal(run('normalize', ['a\nb\r\n']), 'a\r\nb\r\n');
    assert.equal(run('normalize', ['a\rb\r\n']), 'a\r\nb\r\n');
    assert.equal(run('normalize', ['a\r', 'b\n']), 'a\r\nb\r\n');
    assert.equal(run('normalize', ['a\r', '\nb\n', '\n']), 'a\r\nb\r\n\r\n');
    assert.equal(run('normalize', ['a\r\r\n']), 'a\r\n\r\n');
    assert.equal(run('normalize', ['x\n.\nMAIL FROM:<e>\n']), 'x\r\n.\r\nMAIL FROM:<e>\r\n');
    assert.equal(run('normalize', ['end\r']), 'end\r\n');
  });
});
