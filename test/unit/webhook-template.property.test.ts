import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ConfigError, validateConfig } from '../../src/config/load.js';
import { payloadTemplateSchema, renderPayload, type PayloadTemplate } from '../../src/targets/webhook-template.js';

const parse = (v: unknown) => payloadTemplateSchema.parse(v) as PayloadTemplate;

/** Values a subject or body can hold: any code points, and the ones that break hand-made JSON. */
const nasty = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.constantFrom('"', '\\', '\\"', '</script>', '"}, "admin": true, "x": "', '\u0000\u001f\u007f', '\u2028\u2029', '\ud83d\udce8', '\ud800', "'", '<%subject%>', '%', '&=+'),
  fc.array(fc.constantFrom('"', '\\', '\n', '\r', '\t', '\u0000', '</script>', 'é', '\ud83d\udce8', '\ud800', ' '), { maxLength: 20 }).map((a) => a.join('')),
);

describe('webhook payload templates: encoding', () => {
  test('JSON: any field value gives valid JSON whose parsed value is the value itself (object and JSON-text templates)', () => {
    const templates = [parse({ json: { text: '<%subject%>', nested: ['<%msg%>', { deep: '<%subject%>' }], n: 1, flag: true, none: null } }), parse('{"text": "<%subject%>", "nested": ["<%msg%>", {"deep": "<%subject%>"}], "n": 1, "flag": true, "none": null}')];
    fc.assert(
      fc.property(nasty, nasty, (subject, msg) => {
        for (const t of templates) {
          const { body, contentType } = renderPayload(t, { vars: { subject, msg } });
          assert.equal(contentType, 'application/json');
          const doc = JSON.parse(body.toString('utf8'));
          assert.deepEqual(doc, { text: subject, nested: [msg, { deep: subject }], n: 1, flag: true, none: null });
        }
      }),
      { numRuns: 300 },
    );
  });

  test('JSON: a value around literal text keeps the text and the value', () => {
    const t = parse({ json: { text: 'Subject: <%subject%>!' } });
    fc.assert(
      fc.property(nasty, (subject) => {
        assert.equal(JSON.parse(renderPayload(t, { vars: { subject } }).body.toString('utf8')).text, `Subject: ${subject}!`);
      }),
    );
  });

  test('form: any field value round-trips through application/x-www-form-urlencoded', () => {
    const t = parse({ form: { subject: '<%subject%>', text: '<%msg%>', 'odd name&=': 'x' } });
    // Well-formed strings: a lone surrogate has no UTF-8 form (URL encoding writes U+FFFD for it).
    const wellFormed = nasty.filter((s) => !/\p{Cs}/u.test(s));
    fc.assert(
      fc.property(wellFormed, wellFormed, (subject, msg) => {
        const { body, contentType } = renderPayload(t, { vars: { subject, msg } });
        assert.equal(contentType, 'application/x-www-form-urlencoded');
        assert.match(body.toString('latin1'), /^[A-Za-z0-9*\-._%+=&]*$/, 'only URL-safe bytes on the wire');
        const back = new URLSearchParams(body.toString('utf8'));
        assert.deepEqual([...back], [['subject', subject], ['text', msg], ['odd name&=', 'x']]);
      }),
      { numRuns: 300 },
    );
  });

  test('the presets: slack is one text field, form the usual fields', () => {
    const slack = renderPayload(parse('slack'), { vars: { recipient: 'ops@example.org', messageFromName: 'Alice', subject: 'Disk "full"' } });
    assert.deepEqual(JSON.parse(slack.body.toString()), { text: 'New mail for ops@example.org from Alice: Disk "full"' });
    const form = renderPayload(parse('form'), { vars: { address: 'a@example.org', subject: 's', msg: 'm' } });
    assert.equal(form.contentType, 'application/x-www-form-urlencoded');
    assert.equal(new URLSearchParams(form.body.toString()).get('from'), 'a@example.org');
  });
});

describe('webhook payload templates: check-config', () => {
  const cfg = (payload: unknown, extra: Record<string, unknown> = {}) => ({
    routes: [{ name: 'chat', match: { recipient: '(?P<team>[a-z]+)@example.org' }, deliver: [{ webhook: { url: 'https://hooks.example.com/x', payload, ...extra } }] }],
  });
  const refused = (c: unknown): string => {
    try {
      validateConfig(c as never);
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      return e.message;
    }
    assert.fail('accepted');
  };

  test('accepts presets, JSON objects and text, and form maps naming known variables and captures', () => {
    for (const p of ['slack', 'form', { json: { text: '<%team%>: <%subject%>' } }, '{"text": "<%now:%Y-%m-%d%> <%subject|\'none\'%>"}', { form: { t: '<%messageFromAddress|address%>' } }]) {
      validateConfig(cfg(p) as never);
    }
  });

  test('refuses an unknown variable, bad syntax, JSON with a placeholder outside a string, an unknown preset, two kinds, and a format beside it, each at its key path', () => {
    const at = 'routes[0].deliver[0].webhook';
    assert.match(refused(cfg({ json: { text: '<%subjcet%>' } })), new RegExp(`${at}\\.payload\\.json\\.text: template: unknown variable 'subjcet'`.replace(/[[\]]/g, '\\$&')));
    assert.match(refused(cfg({ json: { a: [{ b: '<%subject|%>' }] } })), /routes\[0\]\.deliver\[0\]\.webhook\.payload\.json\.a\[0\]\.b: template: expected a variable name/);
    assert.match(refused(cfg({ form: { s: '<%subject' } })), /routes\[0\]\.deliver\[0\]\.webhook\.payload\.form\.s: template: unterminated <%/);
    assert.match(refused(cfg('{"text": <%subject%>}')), /routes\[0\]\.deliver\[0\]\.webhook\.payload\.json: not JSON \(each <%…%> goes inside a "string"\)/);
    assert.match(refused(cfg('teams')), /routes\[0\]\.deliver\[0\]\.webhook\.payload\.preset: /);
    assert.match(refused(cfg({ json: {}, form: {} })), /routes\[0\]\.deliver\[0\]\.webhook\.payload: give one of preset, json, form \(got json, form\)/);
    assert.match(refused(cfg('slack', { format: 'multipart' })), /routes\[0\]\.deliver\[0\]\.webhook\.format: payload makes the body/);
    assert.match(refused(cfg({ json: { t: "<%__import__('os').system('id')%>" } })), /webhook\.payload\.json\.t: template: /);
  });
});
