import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AUTH_RESULTS, type AuthVerdict } from '../../src/core/auth.js';
import { authResultsHeader, parseAuthResults, renameForged, trustedResults, verdictOf } from '../../src/mime/auth-results.js';
import { parseHeaderBlock } from '../../src/mime/header-sniff.js';
import { authRefusal, unmetAuth } from '../../src/routing/rules.js';

/** A header written by us, read back as a header block the way intake reads one. */
const readBack = (h: string) => parseHeaderBlock(Buffer.from(h))[0][1];

describe('Authentication-Results (RFC 8601)', () => {
  it('reads the RFC 8601 appendix B examples: comments, versions, quoted values, several dkim clauses', () => {
    const p = parseAuthResults(
      'example.com 1; spf=pass (example.net: 192.0.2.1 is designated) smtp.mailfrom=sender@example.net; ' +
        'dkim=pass reason="good signature" header.i=@mail-router.example.net; dkim=fail header.d="newyork.example.com" header.s=x',
    );
    assert.ok(p);
    assert.equal(p.authservId, 'example.com');
    assert.deepEqual(
      p.results.map((r) => [r.method, r.result]),
      [['spf', 'pass'], ['dkim', 'pass'], ['dkim', 'fail']],
    );
    assert.equal(p.results[0].comments[0], 'example.net: 192.0.2.1 is designated');
    assert.equal(p.results[1].reason, 'good signature');
    const v = verdictOf(p);
    assert.deepEqual(v.spf, { result: 'pass', domain: 'example.net' });
    assert.deepEqual(v.dkim.map((d) => [d.domain, d.selector, d.result]), [['mail-router.example.net', '', 'pass'], ['newyork.example.com', 'x', 'fail']]);
  });

  it('"authserv-id; none" is a header with no results', () => {
    assert.deepEqual(parseAuthResults('mx.example.org; none')?.results, []);
  });

  it('believes only the topmost header of a trusted authserv-id, never one a sender wrote under another name', () => {
    const lines = parseHeaderBlock(
      Buffer.from(
        'Authentication-Results: evil.example; dmarc=pass header.from=bank.example\r\n' +
          'Authentication-Results: mx.trusted.example; spf=fail smtp.mailfrom=bank.example; dmarc=fail (p=REJECT) header.from=bank.example\r\n' +
          'Authentication-Results: mx.trusted.example; dmarc=pass header.from=bank.example\r\n\r\n',
      ),
    );
    const v = trustedResults(lines, ['MX.Trusted.Example']);
    assert.equal(v?.source, 'upstream');
    assert.equal(v?.dmarc?.result, 'fail');
    assert.equal(v?.dmarc?.policy, 'reject');
    assert.equal(trustedResults(lines, []), undefined);
    assert.equal(trustedResults(lines, ['other.example']), undefined);
  });

  it('renames every field that claims our authserv-id (folded ones whole), and only those', () => {
    const block =
      'Authentication-Results: MX.Postroom.Test;\r\n dmarc=pass header.from=x.example\r\n' +
      'Authentication-Results: upstream.example; spf=pass\r\n' +
      'Subject: hi\r\n';
    const out = renameForged(block, 'mx.postroom.test');
    assert.equal(
      out,
      'X-Original-Authentication-Results: MX.Postroom.Test;\r\n dmarc=pass header.from=x.example\r\n' +
        'Authentication-Results: upstream.example; spf=pass\r\n' +
        'Subject: hi\r\n',
    );
  });

  const result = fc.constantFrom(...AUTH_RESULTS);
  // Domains and selectors come from senders: anything, control characters and quotes included.
  const hostile = fc.string({ maxLength: 40 });
  const verdict: fc.Arbitrary<AuthVerdict> = fc.record({
    source: fc.constant('smtp' as const),
    authservId: fc.constantFrom('mx.postroom.test', 'mx.example.org'),
    spf: fc.record({ result, domain: fc.option(hostile, { nil: null }) }),
    dkim: fc.array(fc.record({ domain: hostile, selector: hostile, result }), { maxLength: 3 }),
    dmarc: fc.record({ result, domain: fc.option(hostile, { nil: null }), policy: fc.constantFrom(null, 'none', 'quarantine', 'reject'), alignment: fc.constant({ spf: false, dkim: false }) }),
    arc: fc.record({ result }),
  });

  it('property: our header is one field (no CR or LF a sender put in a domain breaks out) and reads back as the verdict', () => {
    fc.assert(
      fc.property(verdict, (v) => {
        const h = authResultsHeader(v);
        const block = parseHeaderBlock(Buffer.from(`${h}\r\n`));
        assert.equal(block.length, 1, h);
        assert.equal(block[0][0], 'Authentication-Results');
        const back = verdictOf(parseAuthResults(readBack(h))!);
        const clean = (s: string | null | undefined) => (s ?? '').replace(/[\x00-\x1f\x7f]/g, '');
        assert.equal(back.spf?.result, v.spf?.result);
        assert.equal(back.dmarc?.result, v.dmarc?.result);
        assert.equal(back.arc?.result, v.arc?.result);
        assert.deepEqual(
          back.dkim.map((d) => d.result),
          v.dkim.length ? v.dkim.map((d) => d.result) : ['none'],
        );
        // Values a sender chose come back as they were (less control characters), quoted or not.
        v.dkim.forEach((d, i) => {
          if (clean(d.selector)) assert.equal(back.dkim[i].selector, clean(d.selector));
        });
        if (v.dmarc?.policy && v.dmarc.policy !== null) assert.equal(back.dmarc?.policy, v.dmarc.policy);
      }),
      { numRuns: 300 },
    );
  });

  it('property: the parser never throws and never invents an authserv-id from nothing', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        const p = parseAuthResults(s);
        if (p) assert.ok(p.authservId.length > 0 && !/\s/.test(p.authservId));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('route conditions and refusals on a verdict', () => {
  const v = (over: Partial<AuthVerdict>): AuthVerdict => ({
    source: 'smtp',
    authservId: 'mx',
    spf: { result: 'pass', domain: 'a.example' },
    dkim: [{ domain: 'a.example', selector: 's', result: 'pass' }],
    dmarc: { result: 'pass', domain: 'a.example', policy: 'reject', alignment: { spf: true, dkim: true } },
    arc: { result: 'none' },
    ...over,
  });

  it('match.auth: each method by result; dkim optionally by domain; no verdict matches nothing', () => {
    assert.equal(unmetAuth({ dmarc: 'pass' }, v({})), null);
    assert.match(unmetAuth({ dmarc: 'pass' }, v({ dmarc: { result: 'fail', domain: 'a.example', policy: 'reject', alignment: { spf: false, dkim: false } } })) ?? '', /dmarc=fail/);
    assert.equal(unmetAuth({ dkim: { result: 'pass', domain: 'A.example' } }, v({})), null);
    assert.match(unmetAuth({ dkim: { result: 'pass', domain: 'b.example' } }, v({})) ?? '', /from b\.example/);
    assert.equal(unmetAuth({ dkim: 'none' }, v({ dkim: [] })), null);
    assert.equal(unmetAuth({ spf: ['pass', 'softfail'], arc: 'none' }, v({})), null);
    assert.match(unmetAuth({ spf: 'pass' }, null) ?? '', /no authentication verdict/);
  });

  it('authFailure: DMARC fail under p=reject is 5.7.26 (RFC 7372); under p=none nothing; temperror never', () => {
    const fail = (policy: string | null) => v({ dmarc: { result: 'fail', domain: 'a.example', policy, alignment: { spf: false, dkim: false } } });
    assert.equal(authRefusal(fail('reject'), ['dmarc'])?.status, '5.7.26');
    assert.equal(authRefusal(fail('reject'), ['dmarc'])?.smtpCode, 550);
    assert.equal(authRefusal(fail('none'), ['dmarc']), null);
    assert.equal(authRefusal(v({ dmarc: { result: 'temperror', domain: null, policy: null, alignment: { spf: false, dkim: false } } }), ['dmarc', 'spf', 'dkim', 'arc']), null);
    assert.equal(authRefusal(v({ spf: { result: 'fail', domain: 'a.example' } }), ['spf'])?.status, '5.7.1');
    assert.equal(authRefusal(v({ dkim: [{ domain: 'a.example', selector: 's', result: 'neutral' }] }), ['dkim'])?.status, '5.7.1');
    assert.equal(authRefusal(v({ dkim: [] }), ['dkim']), null);
    assert.equal(authRefusal(null, ['dmarc']), null);
  });
});
