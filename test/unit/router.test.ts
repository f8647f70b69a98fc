import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { PlannedDelivery, Target } from '../../src/core/delivery.js';
import { MailError } from '../../src/core/errors.js';
import type { RcptContext } from '../../src/core/message.js';
import { describeUnrouted } from '../../src/routing/no-route.js';
import { DEFAULT_RETRY } from '../../src/config/retry.js';
import { createRouter } from '../../src/routing/router.js';
import { makeRoutesSchema } from '../../src/routing/schema.js';
import { targets as registered } from '../../src/targets/index.js';
import { fakeParsed, type FakeMessage } from '../helpers/parsed.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// webhook and forward are built elsewhere; stand-ins with loose params keep this table about
// routing. Like the real ones, they take several recipients in one delivery.
const stand = (kind: string): Target<any> => ({
  kind,
  takesManyRecipients: true,
  params: z.looseObject({}),
  deliver: async () => ({ summary: kind }),
});
const targets = new Map<string, Target<any>>([...registered, ['webhook', stand('webhook')], ['forward', stand('forward')]]);

const faxRoute = (parseYaml(readFileSync(path.join(root, 'config/examples/fax.yaml'), 'utf8')) as { routes: unknown[] }).routes[0];

const routesYaml = `
- name: support
  priority: 20
  match: { recipient: [support@example.org, help@example.org] }
  deliver: [{ webhook: { url: 'https://support.example/hook' } }]
- name: vip
  priority: 10
  match: { recipient: support@example.org, sender: { allow: ['@vip\\.example$'] } }
  deliver: [{ webhook: { url: 'https://vip.example/hook' } }]
- name: archive
  priority: 5
  continue: true
  match: { recipient: '/^(support|help)@example\\.org$/', anonymous: accept }
  deliver: [{ discard: { reason: archive } }]
- name: workflow
  match: { recipient: 'ogo+wf+{route}@example.org' }
  deliver: [{ webhook: { url: 'https://ogo.example/wf' } }]
- name: object
  match: { recipient: 'ogo+{objectId}@example.org' }
  deliver: [{ webhook: { url: 'https://ogo.example/obj' } }, { discard: {} }]
- name: invoices
  match: { recipient: invoices@example.org, attachment: [application/pdf, 'image/*'] }
  deliver: [{ spool: { dir: /tmp/never-written } }]
- name: uploads
  match: { recipient: uploads@example.org, size: { max: 1000 } }
  deliver: [{ webhook: { url: 'https://up.example' } }]
- name: alerts
  match: { recipient: alerts@example.org, header: [{ name: X-Alert, match: '^(critical|high)$' }] }
  deliver: [{ webhook: { url: 'https://alerts.example' } }]
- name: internal
  match: { recipient: internal@example.org, clients: [10.0.0.0/8], authenticated: true }
  deliver: [{ webhook: { url: 'https://internal.example' } }]
- name: staff
  match: { recipient: staff@example.org, users: [alice] }
  deliver: [{ webhook: { url: 'https://staff.example' } }]
- name: partners
  match: { recipient: partners@example.org, sender: { allow: ['@partner\\.example$'], from: true } }
  deliver: [{ forward: { host: partners.example } }]
- name: quarantine
  match: { recipient: quarantine@example.org, defects: true }
  deliver: [{ webhook: { url: 'https://quarantine.example' } }]
- name: clean-only
  match: { recipient: clean@example.org, defects: false }
  deliver: [{ webhook: { url: 'https://clean.example' } }]
- name: undated
  match: { recipient: dates@example.org, defects: [invalid-date, unknown-date-zone] }
  deliver: [{ webhook: { url: 'https://dates.example' } }]
- name: blackhole
  match: { recipient: '*@spam.example.org' }
  deliver: [{ reject: { code: 550, status: 5.7.1, text: We do not want it } }]
- name: rest
  catchAll: true
  match: { recipient: '*@example.org' }
  deliver: [{ forward: { host: upstream.example } }]
- name: nobody
  catchAll: true
  match: { recipient: '*@example.net' }
  deliver: [{ reject: { code: 550, status: 5.1.1, text: Nobody here by that name } }]
`;

const routes = makeRoutesSchema(targets).parse([...(parseYaml(routesYaml) as unknown[]), faxRoute]);
const router = createRouter(routes, targets);
const check = router.recipientCheck();

const FAX = 'Jan Novak/ACME/Sales/+420123456789@fax';

/** RCPT TO verdict: 'accept' or 'CODE STATUS'. */
async function rcptVerdict(rcpt: string, ctx: Partial<RcptContext> = {}): Promise<string> {
  try {
    await check(rcpt, { ingress: 'smtp', mailFrom: 'bob@example.com', accepted: [], clientIp: '127.0.0.1', trusted: true, ...ctx });
    return 'accept';
  } catch (err) {
    assert.ok(err instanceof MailError, `a MailError, got ${String(err)}`);
    return `${err.smtpCode} ${err.status} ${err.message}`;
  }
}

/** Planned deliveries as 'route[target] recipients {captures}'. */
function show(p: PlannedDelivery[]): string[] {
  return p.map((d) => {
    const caps = Object.keys(d.captures).length ? ` ${JSON.stringify(d.captures)}` : '';
    return `${d.route}[${d.targetIndex}] ${d.recipients.join(',')}${caps}`;
  });
}

type RcptCase = { name: string; rcpt: string; ctx?: Partial<RcptContext>; expect: string | RegExp };
type PlanCase = { name: string; msg: FakeMessage; expect: string[] };

const rcptCases: RcptCase[] = [
  { name: 'exact address accepted', rcpt: 'support@example.org', expect: 'accept' },
  { name: 'unknown domain: 550 5.1.1', rcpt: 'someone@other.org', expect: /^550 5\.1\.1 / },
  { name: 'unmatched at a catch-all domain: accepted (forwarded)', rcpt: 'unknown@example.org', expect: 'accept' },
  { name: 'catch-all reject replies with its own code and text', rcpt: 'x@example.net', expect: '550 5.1.1 Nobody here by that name' },
  { name: 'glob reject route refuses at RCPT', rcpt: 'anything@spam.example.org', expect: '550 5.7.1 We do not want it' },
  { name: 'template with plus segments', rcpt: 'ogo+wf+approve@example.org', expect: 'accept' },
  { name: 'fax: allowed client and sender', rcpt: FAX, expect: 'accept' },
  { name: 'fax: quoted local part', rcpt: '"Jan Novak/ACME/Sales/+420123456789"@fax', expect: 'accept' },
  { name: 'fax: number only', rcpt: '+420123456789@fax', expect: 'accept' },
  { name: 'fax: not a number is no fax: 550 5.1.1', rcpt: 'Jan Novak/ACME@fax', expect: /^550 5\.1\.1 / },
  { name: 'fax: sender .*@gsm$ denied: 550 5.7.1', rcpt: FAX, ctx: { mailFrom: '420777@gsm' }, expect: /^550 5\.7\.1 Sender/ },
  { name: 'fax: sender .*@fax$ denied: 550 5.7.1', rcpt: FAX, ctx: { mailFrom: 'loop@fax' }, expect: /^550 5\.7\.1 / },
  { name: 'fax: deny regex is case-insensitive', rcpt: FAX, ctx: { mailFrom: 'X@GSM' }, expect: /^550 5\.7\.1 / },
  { name: 'fax: last address of the client range accepted', rcpt: FAX, ctx: { clientIp: '192.168.1.31' }, expect: 'accept' },
  { name: 'fax: client outside the range: 550 5.7.1', rcpt: FAX, ctx: { clientIp: '192.168.1.32' }, expect: /^550 5\.7\.1 Client/ },
  { name: 'fax: IPv4-mapped IPv6 client is the IPv4 client', rcpt: FAX, ctx: { clientIp: '::ffff:127.0.0.1' }, expect: 'accept' },
  { name: 'fax: no client address (pipe) fails closed', rcpt: FAX, ctx: { clientIp: undefined }, expect: /^550 5\.7\.1 / },
  { name: 'fax: null sender refused (spool route default)', rcpt: FAX, ctx: { mailFrom: '' }, expect: /^550 5\.7\.1 Null sender/ },
  { name: 'null sender to a webhook route with an archive that accepts it', rcpt: 'help@example.org', ctx: { mailFrom: '' }, expect: 'accept' },
  { name: 'attachment condition waits for DATA', rcpt: 'invoices@example.org', expect: 'accept' },
  { name: 'header condition waits for DATA', rcpt: 'alerts@example.org', expect: 'accept' },
  { name: 'client + auth: both hold', rcpt: 'internal@example.org', ctx: { clientIp: '10.1.2.3', authUser: 'carol' }, expect: 'accept' },
  { name: 'client + auth: not authenticated', rcpt: 'internal@example.org', ctx: { clientIp: '10.1.2.3' }, expect: /^550 5\.7\.1 Authentication/ },
  { name: 'client + auth: client outside 10/8', rcpt: 'internal@example.org', ctx: { clientIp: '8.8.8.8', authUser: 'carol' }, expect: /^550 5\.7\.1 Client/ },
  { name: 'user list: alice accepted', rcpt: 'staff@example.org', ctx: { authUser: 'alice' }, expect: 'accept' },
  { name: 'user list: bob refused', rcpt: 'staff@example.org', ctx: { authUser: 'bob' }, expect: /^550 5\.7\.1 User bob/ },
  { name: 'envelope sender outside allow list: 550 5.7.1', rcpt: 'partners@example.org', ctx: { mailFrom: 'eve@evil.example' }, expect: /^550 5\.7\.1 / },
  { name: 'envelope sender inside allow list', rcpt: 'partners@example.org', ctx: { mailFrom: 'joe@partner.example' }, expect: 'accept' },
];

const planCases: PlanCase[] = [
  { name: 'fan-out: archive (continue) then support', msg: { rcptTo: ['support@example.org'] }, expect: ['archive[0] support@example.org', 'support[0] support@example.org'] },
  {
    name: 'priority: vip (10) before support (20) although written after it',
    msg: { mailFrom: 'ceo@vip.example', rcptTo: ['support@example.org'] },
    expect: ['archive[0] support@example.org', 'vip[0] support@example.org'],
  },
  {
    name: 'two recipients reaching one route are one delivery per target',
    msg: { rcptTo: ['support@example.org', 'help@example.org'] },
    expect: ['archive[0] support@example.org,help@example.org', 'support[0] support@example.org,help@example.org'],
  },
  { name: 'the same recipient twice in the envelope is one recipient', msg: { rcptTo: ['help@example.org', 'HELP@example.org'] }, expect: ['archive[0] help@example.org', 'support[0] help@example.org'] },
  {
    name: 'Bcc-only recipient routes on the envelope, whatever To: says',
    msg: { rcptTo: ['ogo+777@example.org'], to: [{ name: '', address: 'someone@else.example' }], headers: [['To', 'someone@else.example']] },
    expect: ['object[0] ogo+777@example.org {"objectId":"777"}', 'object[1] ogo+777@example.org {"objectId":"777"}'],
  },
  { name: 'template captures the plus segment', msg: { rcptTo: ['ogo+wf+approve@example.org'] }, expect: ['workflow[0] ogo+wf+approve@example.org {"route":"approve"}'] },
  { name: 'template matching ignores case', msg: { rcptTo: ['OGO+12345@EXAMPLE.ORG'] }, expect: ['object[0] OGO+12345@EXAMPLE.ORG {"objectId":"12345"}', 'object[1] OGO+12345@EXAMPLE.ORG {"objectId":"12345"}'] },
  { name: 'a placeholder never spans a +: falls to the catch-all', msg: { rcptTo: ['ogo+wf+a+b@example.org'] }, expect: ['rest[0] ogo+wf+a+b@example.org'] },
  {
    name: 'fax regex captures name, company, dept, number',
    msg: { rcptTo: [FAX] },
    expect: [`fax[0] ${FAX} {"name":"Jan Novak","company":"ACME","dept":"Sales","number":"+420123456789"}`],
  },
  { name: 'null sender: only the route that accepts it delivers', msg: { mailFrom: '', rcptTo: ['help@example.org'] }, expect: ['archive[0] help@example.org'] },
  {
    name: 'attachment of type application/pdf matches',
    msg: { rcptTo: ['invoices@example.org'], parts: [{ kind: 'attachment', contentType: 'application/pdf', filename: 'a.pdf' }] },
    expect: ['invoices[0] invoices@example.org'],
  },
  {
    name: 'inline image matches image/*',
    msg: { rcptTo: ['invoices@example.org'], parts: [{ kind: 'inline', contentType: 'Image/PNG', contentId: '<x>' }] },
    expect: ['invoices[0] invoices@example.org'],
  },
  { name: 'no matching attachment: the catch-all takes it', msg: { rcptTo: ['invoices@example.org'], parts: [{ kind: 'text', contentType: 'text/plain' }] }, expect: ['rest[0] invoices@example.org'] },
  { name: 'size within max', msg: { rcptTo: ['uploads@example.org'], size: 1000 }, expect: ['uploads[0] uploads@example.org'] },
  { name: 'size over max: the catch-all takes it', msg: { rcptTo: ['uploads@example.org'], size: 1001 }, expect: ['rest[0] uploads@example.org'] },
  { name: 'header matches', msg: { rcptTo: ['alerts@example.org'], headers: [['x-alert', 'critical']] }, expect: ['alerts[0] alerts@example.org'] },
  { name: 'header matches after RFC 2047 decoding', msg: { rcptTo: ['alerts@example.org'], headers: [['X-Alert', '=?utf-8?q?high?=']] }, expect: ['alerts[0] alerts@example.org'] },
  { name: 'header does not match', msg: { rcptTo: ['alerts@example.org'], headers: [['X-Alert', 'low']] }, expect: ['rest[0] alerts@example.org'] },
  {
    name: 'From: checked against the allow list when from: true',
    msg: { mailFrom: 'joe@partner.example', rcptTo: ['partners@example.org'], from: [{ name: 'Joe', address: 'joe@partner.example' }] },
    expect: ['partners[0] partners@example.org'],
  },
  {
    name: 'From: outside the allow list: the route does not apply',
    msg: { mailFrom: 'joe@partner.example', rcptTo: ['partners@example.org'], from: [{ name: 'Eve', address: 'eve@evil.example' }] },
    expect: ['rest[0] partners@example.org'],
  },
  {
    name: 'several recipients, several routes',
    msg: { rcptTo: [FAX, 'ogo+wf+x@example.org', 'unknown@example.org'] },
    // In route order: the fax route comes last in the file.
    expect: ['workflow[0] ogo+wf+x@example.org {"route":"x"}', 'rest[0] unknown@example.org', `fax[0] ${FAX} {"name":"Jan Novak","company":"ACME","dept":"Sales","number":"+420123456789"}`],
  },
  { name: 'defects: true takes a message with a parse defect', msg: { rcptTo: ['quarantine@example.org'], defects: ['invalid-date'] }, expect: ['quarantine[0] quarantine@example.org'] },
  { name: 'defects: true takes a message that could not be parsed at all', msg: { rcptTo: ['quarantine@example.org'], parseStatus: 'raw' }, expect: ['quarantine[0] quarantine@example.org'] },
  { name: 'defects: true passes a clean message to the catch-all', msg: { rcptTo: ['quarantine@example.org'] }, expect: ['rest[0] quarantine@example.org'] },
  { name: 'defects: false takes a clean message', msg: { rcptTo: ['clean@example.org'] }, expect: ['clean-only[0] clean@example.org'] },
  { name: 'defects: false passes a malformed one to the catch-all', msg: { rcptTo: ['clean@example.org'], defects: ['no-boundary-in-multipart'] }, expect: ['rest[0] clean@example.org'] },
  { name: 'defects by name: one of them matches', msg: { rcptTo: ['dates@example.org'], defects: ['close-boundary-not-found', 'unknown-date-zone'] }, expect: ['undated[0] dates@example.org'] },
  { name: 'defects by name: other defects do not', msg: { rcptTo: ['dates@example.org'], defects: ['close-boundary-not-found'] }, expect: ['rest[0] dates@example.org'] },
  { name: 'a sender refused by the fax route is not forwarded by a catch-all', msg: { mailFrom: 'a@gsm', rcptTo: [FAX] }, expect: [] },
];

describe('routing decisions at RCPT time', () => {
  for (const c of rcptCases) {
    it(`${c.name}: ${c.rcpt} → ${c.expect}`, async () => {
      const got = await rcptVerdict(c.rcpt, c.ctx);
      if (c.expect instanceof RegExp) assert.match(got, c.expect);
      else assert.equal(got, c.expect);
    });
  }
});

describe('planned deliveries after parse', () => {
  for (const c of planCases) {
    it(c.name, async () => {
      assert.deepEqual(show(await router.plan(fakeParsed(c.msg))), c.expect);
    });
  }

  it('names each route that refused a recipient and why (envelope and content), for the no-route error', async () => {
    const own = createRouter(
      makeRoutesSchema(targets).parse(
        parseYaml(`
- name: alerts
  match: { recipient: alerts@example.org, header: [{ name: X-Alert, match: '^(critical|high)$' }] }
  deliver: [{ webhook: { url: 'https://alerts.example' } }]
- name: hooks
  match: { recipient: hook@example.org }
  deliver: [{ webhook: { url: 'https://hooks.example' } }]
`) as unknown[],
      ),
      targets,
    );
    const { deliveries, unrouted } = await own.evaluate(
      fakeParsed({ mailFrom: '', rcptTo: ['alerts@example.org', 'hook@example.org', 'nobody@other.org'], headers: [['X-Alert', 'low']] }),
    );
    assert.deepEqual(deliveries, []);
    assert.equal(
      describeUnrouted(unrouted),
      '<alerts@example.org>: route "alerts" refused: 5.7.1 Null sender not accepted for this recipient; ' +
        '<hook@example.org>: route "hooks" refused: 5.7.1 Null sender not accepted for this recipient; ' +
        '<nobody@other.org>: no route matches this recipient',
    );
    const content = await own.evaluate(fakeParsed({ mailFrom: 'a@example.org', rcptTo: ['alerts@example.org'], headers: [['X-Alert', 'low']] }));
    assert.equal(describeUnrouted(content.unrouted), '<alerts@example.org>: route "alerts" refused: no x-alert header matching /^(critical|high)$/i');
  });

  it('lists the recipients nothing routes, with the reply they would have had', async () => {
    const { deliveries, unrouted } = await router.evaluate(fakeParsed({ rcptTo: ['nobody@other.org', 'help@example.org'], mailFrom: '' }));
    assert.deepEqual(show(deliveries), ['archive[0] help@example.org']);
    assert.deepEqual(
      unrouted.map((u) => `${u.recipient} ${u.error.smtpCode} ${u.error.status}`),
      ['nobody@other.org 550 5.1.1'],
    );
  });

  it('hands each target its params and kind as configured', async () => {
    const [d] = await router.plan(fakeParsed({ rcptTo: ['ogo+wf+go@example.org'] }));
    assert.equal(d.kind, 'webhook');
    assert.deepEqual(d.params, { url: 'https://ogo.example/wf' });
  });

  it('equal priorities keep file order', async () => {
    const rs = makeRoutesSchema(targets).parse([
      { name: 'first', continue: true, deliver: [{ discard: {} }] },
      { name: 'second', deliver: [{ discard: null }] },
    ]);
    assert.deepEqual(show(await createRouter(rs, targets).plan(fakeParsed({ rcptTo: ['a@b.c'] }))), ['first[0] a@b.c', 'second[0] a@b.c']);
  });

  it('with no routes configured refuses nothing and plans nothing', async () => {
    const empty = createRouter([], targets);
    await empty.recipientCheck()('any@where', { ingress: 'smtp', mailFrom: '', accepted: [], trusted: false });
    assert.deepEqual(await empty.plan(fakeParsed({ rcptTo: ['any@where'] })), []);
  });

  it("gives each route its retry policy, else the default", () => {
    const rs = makeRoutesSchema(targets).parse([{ name: 'r', deliver: [{ discard: {} }], retry: { maxAttempts: 3 } }]);
    const r = createRouter(rs, targets);
    assert.equal(r.retryPolicy('r').maxAttempts, 3);
    assert.equal(r.retryPolicy('other').maxAttempts, DEFAULT_RETRY.maxAttempts);
  });
});

describe('route schema', () => {
  const errorsOf = (input: unknown) => {
    const r = makeRoutesSchema(targets).safeParse(input);
    assert.equal(r.success, false);
    return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('reports a bad target param under its kind', () => {
    const errs = errorsOf([{ name: 'a', deliver: [{ spool: { dir: 7 } }] }]);
    assert.ok(errs.some((e) => e.startsWith('0.deliver.0.spool.dir:')), errs.join('\n'));
  });

  it('refuses an unknown target kind and a deliver item naming two kinds', () => {
    assert.ok(errorsOf([{ name: 'a', deliver: [{ spol: { dir: 'x' } }] }]).some((e) => /spol/.test(e)));
    assert.ok(errorsOf([{ name: 'a', deliver: [{ discard: {}, reject: {} }] }]).some((e) => /exactly one/.test(e)));
  });

  it('refuses a template naming a capture the route does not have', () => {
    const errs = errorsOf([
      { name: 'a', match: { recipient: 'ogo+{objectId}@x' }, deliver: [{ spool: { dir: 'd', control: { s: { k: '<%objectid%>' } } } }] },
    ]);
    assert.ok(errs.some((e) => e.startsWith('0.deliver.0.spool.control.s.k:') && /unknown variable 'objectid'/.test(e)), errs.join('\n'));
  });

  it("refuses code in a template at config load: <%__import__('os').system('id')%>", () => {
    const errs = errorsOf([{ name: 'a', deliver: [{ spool: { dir: 'd', control: { x: "<%__import__('os').system('id')%>" } } }] }]);
    assert.ok(errs.some((e) => e.startsWith('0.deliver.0.spool.control.x:')), errs.join('\n'));
  });

  it('refuses a bad regex, a bad client entry, a g flag and a duplicate name', () => {
    assert.ok(errorsOf([{ name: 'a', match: { recipient: '/(/' }, deliver: [{ discard: {} }] }]).some((e) => e.startsWith('0.match.recipient')));
    assert.ok(errorsOf([{ name: 'a', match: { clients: ['not an ip!'] }, deliver: [{ discard: {} }] }]).some((e) => e.startsWith('0.match.clients')));
    assert.ok(errorsOf([{ name: 'a', match: { recipient: '/x/g' }, deliver: [{ discard: {} }] }]).some((e) => /flags/.test(e)));
    assert.ok(errorsOf([{ name: 'a', deliver: [{ discard: {} }] }, { name: 'a', deliver: [{ discard: {} }] }]).some((e) => /twice/.test(e)));
  });

  it('refuses a reject whose code and status disagree', () => {
    assert.ok(errorsOf([{ name: 'a', deliver: [{ reject: { code: 450, status: '5.7.1' } }] }]).some((e) => /both/.test(e)));
  });
});
