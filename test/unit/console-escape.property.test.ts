import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { escapeHtml, html, safeUrl } from '../../src/console/assets/html.js';

/** Undo escapeHtml, to show nothing was lost. */
function unescape(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|#39|#96|#61);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#96': '`', '#61': '=' })[e]!);
}

const hostile = fc.oneof(
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: fc.constantFrom('<', '>', '"', "'", '`', '=', '&', ';', '#', 'a', ' ', '/', 'x') }),
  fc.constantFrom('<script>alert(1)</script>', '<img src=x onerror=alert(1)>', '" onmouseover="alert(1)', "'><svg onload=alert(1)>", '&lt;already&gt;', '`${x}`'),
);

describe('the console escaping helper', () => {
  it('escaped text never holds a raw < > " \' ` = and decodes back to the input', () => {
    fc.assert(
      fc.property(hostile, (s) => {
        const e = escapeHtml(s);
        assert.doesNotMatch(e, /[<>"'`=]/);
        // Every & starts one of our entities: nothing the input held can form markup or an entity.
        assert.doesNotMatch(e, /&(?!(amp|lt|gt|quot|#39|#96|#61);)/);
        assert.equal(unescape(e), s);
      }),
      { numRuns: 2000 },
    );
  });

  it('html`` escapes every interpolation, in element text and in quoted attributes, and nests its own output', () => {
    fc.assert(
      fc.property(hostile, hostile, (a, b) => {
        const out = html`<td title="${a}">${b}</td>`.toString();
        const title = out.slice('<td title="'.length, out.indexOf('">'));
        assert.doesNotMatch(title, /[<>"'`]/);
        const text = out.slice(out.indexOf('">') + 2, -'</td>'.length);
        assert.doesNotMatch(text, /[<>"'`]/);
        assert.equal(unescape(text), b);
        // Arrays of Html join; raw strings in arrays are escaped too.
        const nested = html`<ul>${[html`<li>${a}</li>`, b]}</ul>`.toString();
        assert.equal(nested, `<ul><li>${escapeHtml(a)}</li>${escapeHtml(b)}</ul>`);
      }),
      { numRuns: 1000 },
    );
  });

  it('null, undefined and false render as nothing; numbers as text', () => {
    assert.equal(html`${null}${undefined}${false}${0}`.toString(), '0');
  });

  it('safeUrl lets only our paths, fragments, http(s) and mailto through', () => {
    for (const bad of ['javascript:alert(1)', ' JaVaScRiPt:alert(1)', 'data:text/html,<script>', 'vbscript:x', '//evil.example/x', 'java\tscript:x']) {
      assert.equal(safeUrl(bad), '#', bad);
    }
    for (const good of ['/api/v1/messages/x', '#/messages', 'https://example.org/', 'mailto:a@b']) assert.equal(safeUrl(good), good);
    fc.assert(fc.property(fc.string(), (s) => assert.doesNotMatch(safeUrl(s), /^\s*(javascript|data|vbscript):/i)));
  });
});
