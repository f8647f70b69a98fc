import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import iconv from 'iconv-lite';
import type { DeliveryContext, ParsedMessage } from '../../src/core/delivery.js';
import { MailError } from '../../src/core/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { createRouter } from '../../src/routing/router.js';
import { renderIni } from '../../src/targets/spool-files.js';
import { createSpoolTarget, spoolParams, type SpoolParams } from '../../src/targets/spool.js';
import { targets } from '../../src/targets/index.js';
import { tempDir } from '../helpers/env.js';
import { fakeParsed, type FakeMessage } from '../helpers/parsed.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FAX = 'Jan Novak/ACME/Sales/+420123456789@fax';
const spool = createSpoolTarget({ now: () => new Date(2026, 4, 6, 7, 8, 9) });

function ctxFor(route: string, recipients: string[], captures: Record<string, string> = {}, id = 'dlv-1'): DeliveryContext {
  const recipientCaptures = Object.fromEntries(recipients.map((r) => [r, captures]));
  return { deliveryId: id, attempt: 1, route, recipients, captures, recipientCaptures, signal: new AbortController().signal };
}

/** Parse INI text into { section: { key: value } }; top-level keys under ''. */
function readIni(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = { '': {} };
  let section = '';
  for (const line of text.split(/\r?\n/)) {
    const s = /^\[(.+)\]$/.exec(line);
    if (s) out[(section = s[1])] = {};
    else if (line.includes('=')) out[section][line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
  }
  return out;
}

describe('the fax route (config/examples/fax.yaml)', () => {
  const config = loadConfig(path.join(root, 'config/examples/fax.yaml'), {});
  const router = createRouter(config.routes, targets);
  const faxSpool = config.routes[0].deliver[0];
  let tmp: ReturnType<typeof tempDir>;
  const cwd = process.cwd();
  before(() => {
    tmp = tempDir();
    process.chdir(tmp.dir); // the route writes to ./spool/fax, as written
  });
  after(() => {
    process.chdir(cwd);
    tmp.cleanup();
  });

  async function deliverFax(msg: Partial<FakeMessage>, id: string) {
    const parsed = fakeParsed({
      mailFrom: 'jan@example.org',
      rcptTo: [FAX],
      subject: 'Order ID:4711',
      text: 'Please fax this.\n',
      from: [{ name: 'Jan', address: 'jan@example.org' }],
      ...msg,
    });
    const [planned] = await router.plan(parsed);
    assert.equal(planned.kind, 'spool');
    await spool.deliver(parsed, planned.params as SpoolParams, ctxFor(planned.route, planned.recipients, planned.captures, id));
    const files = readdirSync('spool/fax').filter((f) => f.includes(parsed.message.id));
    return { parsed, files, ctl: readIni(readFileSync(path.join('spool/fax', files.find((f) => f.endsWith('.ctl'))!), 'utf8')) };
  }

  it('validates as written', () => {
    assert.equal(config.routes[0].name, 'fax');
    assert.equal(faxSpool.kind, 'spool');
    assert.deepEqual((faxSpool.params as SpoolParams).format, ['txt', 'eml']);
  });

  it('refuses a sender matching .*@gsm$ with 550 5.7.1 at RCPT', async () => {
    const check = router.recipientCheck();
    await assert.rejects(
      check(FAX, { ingress: 'smtp', mailFrom: '420777123@gsm', accepted: [], clientIp: '127.0.0.1', trusted: true }),
      (e: MailError) => e.smtpCode === 550 && e.status === '5.7.1',
    );
    await check(FAX, { ingress: 'smtp', mailFrom: 'jan@example.org', accepted: [], clientIp: '127.0.0.1', trusted: true });
  });

  it('writes a .txt and a .ctl whose [system] has user_app_id=4711 and [from] the Reply-To address', async () => {
    const { parsed, files, ctl } = await deliverFax({ replyTo: [{ name: 'Desk', address: 'desk@example.org' }] }, 'd1');
    assert.deepEqual(files.map((f) => path.extname(f)).sort(), ['.ctl', '.txt']);
    const txt = files.find((f) => f.endsWith('.txt'))!;
    assert.equal(readFileSync(path.join('spool/fax', txt), 'utf8'), 'Please fax this.\n');
    assert.equal(ctl[''].ctl_type, 'fax');
    assert.deepEqual(ctl.system, { priority: 'normal', user_app_id: '4711' });
    assert.deepEqual(ctl.to, { name: 'Jan Novak', company: 'ACME', dept: 'Sales', number: '+420123456789' });
    assert.deepEqual(ctl.from, { email: 'desk@example.org' });
    assert.ok(txt.startsWith(parsed.message.id), 'names start with the sortable message id');
  });

  it('falls back to the From: address without Reply-To, and to the literal without either', async () => {
    assert.deepEqual((await deliverFax({}, 'd2')).ctl.from, { email: 'jan@example.org' });
    assert.deepEqual((await deliverFax({ from: [] }, 'd3')).ctl.from, { email: 'lamp_room@example.org' });
  });

  it('writes eml when the message has no text part (second in the preference list)', async () => {
    const { files, parsed } = await deliverFax({ text: null, raw: 'Subject: x\r\n\r\n<p>hi</p>\r\n' }, 'd4');
    const eml = files.find((f) => f.endsWith('.eml'))!;
    assert.ok(eml, files.join());
    assert.deepEqual(readFileSync(path.join('spool/fax', eml)), Buffer.from('Subject: x\r\n\r\n<p>hi</p>\r\n'));
    assert.ok(parsed);
  });
});

describe('spool target', () => {
  let tmp: ReturnType<typeof tempDir>;
  before(() => (tmp = tempDir()));
  after(() => tmp.cleanup());
  const params = ({ sub, ...p }: Record<string, unknown>) => spoolParams.parse({ dir: path.join(tmp.dir, String(sub)), ...p });
  const run = async (p: SpoolParams, msg: ParsedMessage, id = 'dlv') => {
    const receipt = await spool.deliver(msg, p, ctxFor('r', msg.message.rcptTo, {}, id));
    return { receipt, files: readdirSync(p.dir).filter((f) => f.startsWith(msg.message.id)).sort() };
  };

  it('takes the first format of the preference list the message can give', async () => {
    const p = params({ sub: 'pref', format: ['htm', 'txt', 'eml'] });
    const { files } = await run(p, fakeParsed({ rcptTo: ['a@x'], text: 'only text' }));
    assert.deepEqual(files.map((f) => path.extname(f)), ['.txt']);
    const html = await run(p, fakeParsed({ rcptTo: ['a@x'], text: 't', html: '<b>h</b>' }));
    assert.deepEqual(html.files.map((f) => path.extname(f)), ['.htm']);
  });

  it('fails permanently when the message can give none of the formats', async () => {
    await assert.rejects(run(params({ sub: 'none', format: ['txt'] }), fakeParsed({ rcptTo: ['a@x'], text: null })), (e: MailError) =>
      e.disposition === 'permanent' && /none of the formats/.test(e.message),
    );
  });

  it('builds mht as multipart/related with the inline images', async () => {
    const msg = fakeParsed({
      rcptTo: ['a@x'],
      html: '<img src="cid:logo@x">',
      parts: [{ kind: 'inline', contentType: 'image/png', contentId: '<logo@x>', filename: 'logo.png', body: 'PNGDATA' }],
    });
    const { files } = await run(params({ sub: 'mht', format: ['mht'], attachments: true }), msg);
    assert.deepEqual(files.map((f) => path.extname(f)), ['.mht'], 'the inline image is inside, not beside');
    const mht = readFileSync(path.join(tmp.dir, 'mht', files[0]), 'utf8');
    assert.match(mht, /Content-Type: multipart\/related/);
    assert.match(mht, /Content-ID: <logo@x>/);
    assert.match(mht, /UE5HREFUQQ==/, 'the image bytes, base64');
  });

  it('writes attachments as files of their own, named after the message file', async () => {
    const msg = fakeParsed({
      rcptTo: ['a@x'],
      text: 'see attached',
      parts: [
        { kind: 'text', contentType: 'text/plain', body: 'see attached' },
        { kind: 'attachment', contentType: 'application/pdf', filename: 'order.pdf', body: '%PDF-1.4' },
      ],
    });
    const { files, receipt } = await run(params({ sub: 'att', format: 'txt', attachments: true }), msg);
    assert.equal(files.length, 2);
    const pdf = files.find((f) => f.endsWith('.pdf'))!;
    assert.match(pdf, /^[0-9a-z]+-[0-9a-f]{8}\.1\.order\.pdf$/);
    assert.equal(readFileSync(path.join(tmp.dir, 'att', pdf), 'utf8'), '%PDF-1.4');
    assert.match(receipt.summary, /^wrote .*\.txt \+ 1 more$/);
  });

  it('processes the attached message/rfc822 instead of the outer one when asked', async () => {
    const inner = [
      'From: Alice <alice@inner.example>',
      'Reply-To: desk@inner.example',
      'Subject: Inner ID:99',
      'Content-Type: multipart/mixed; boundary=b',
      '',
      '--b',
      'Content-Type: text/plain',
      '',
      'inner body',
      '--b',
      'Content-Type: application/pdf; name="../../etc/passwd"',
      'Content-Disposition: attachment; filename="../../etc/passwd"',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('secret?').toString('base64'),
      '--b--',
      '',
    ].join('\r\n');
    const msg = fakeParsed({
      rcptTo: ['a@x'],
      subject: 'Fwd: outer',
      text: 'outer body',
      parts: [{ kind: 'attachment', contentType: 'message/rfc822', filename: 'fwd.eml', body: inner }],
    });
    const p = params({
      sub: 'inner',
      format: ['txt'],
      attachedMessage: true,
      attachments: true,
      control: { m: { subject: '<%subject%>', id: '<%subject~/ID:(\\d+)/%>', from: '<%messageReplyToAddress%>', files: '<%attachmentFiles%>' } },
    });
    const { files } = await run(p, msg);
    const dir = path.join(tmp.dir, 'inner');
    assert.equal(readFileSync(path.join(dir, files.find((f) => f.endsWith('.txt'))!), 'utf8').trim(), 'inner body');
    const att = files.find((f) => f.includes('.1.'))!;
    assert.ok(att && !att.includes('/') && att.endsWith('passwd'), `a flat, sanitised name: ${att}`);
    const ctl = readIni(readFileSync(path.join(dir, files.find((f) => f.endsWith('.ctl'))!), 'utf8'));
    assert.deepEqual(ctl.m, { subject: 'Inner ID:99', id: '99', from: 'desk@inner.example', files: att });
  });

  it('encodes text and control files in the configured code page', async () => {
    const text = 'Příliš žluťoučký kůň';
    const p = params({ sub: 'cp', format: ['txt'], encoding: 'windows-1250', newline: 'crlf', control: { s: { subject: '<%subject%>' } } });
    const { files } = await run(p, fakeParsed({ rcptTo: ['a@x'], subject: text, text: `${text}\n` }));
    const dir = path.join(tmp.dir, 'cp');
    assert.deepEqual(readFileSync(path.join(dir, files.find((f) => f.endsWith('.txt'))!)), iconv.encode(`${text}\r\n`, 'windows-1250'));
    assert.deepEqual(readFileSync(path.join(dir, files.find((f) => f.endsWith('.ctl'))!)), iconv.encode(`[s]\r\nsubject=${text}\r\n`, 'windows-1250'));
  });

  it('refuses an unknown code page at config load', () => {
    assert.equal(spoolParams.safeParse({ dir: 'x', encoding: 'klingon-8' }).success, false);
  });

  it('keeps a subject with line breaks from forging control file keys', async () => {
    const p = params({ sub: 'inj', format: ['txt'], control: { to: { subject: '<%subject%>' }, system: { user_app_id: '1' } } });
    const { files } = await run(p, fakeParsed({ rcptTo: ['a@x'], subject: 'x\r\n[system]\r\nuser_app_id=666', text: 't' }));
    const ctl = readIni(readFileSync(path.join(tmp.dir, 'inj', files.find((f) => f.endsWith('.ctl'))!), 'utf8'));
    assert.deepEqual(ctl.system, { user_app_id: '1' });
    assert.equal(ctl.to.subject, 'x  [system]  user_app_id=666');
  });

  it('leaves no temporary files, names sort by arrival, and a retry rewrites the same files', async () => {
    const p = params({ sub: 'order', format: ['txt'], control: { a: 'b' } });
    const first = fakeParsed({ rcptTo: ['a@x'], text: '1' });
    const second = fakeParsed({ rcptTo: ['a@x'], text: '2' });
    await run(p, first, 'x1');
    await run(p, second, 'x2');
    await run(p, first, 'x1'); // the queue retrying the same delivery
    const all = readdirSync(p.dir);
    assert.equal(all.length, 4, all.join());
    assert.ok(!all.some((f) => f.startsWith('.') || f.endsWith('.tmp')));
    const txts = all.filter((f) => f.endsWith('.txt')).sort();
    assert.deepEqual(txts.map((f) => readFileSync(path.join(p.dir, f), 'utf8')), ['1', '2']);
  });

  it('renders top-level control keys before any section, as INI readers expect', () => {
    assert.equal(renderIni({ s: { k: 'v' }, top: 'x' }, '\n'), 'top=x\n\n[s]\nk=v\n');
  });
});
