import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { requirePeer, tempDir, waitFor } from '../helpers/env.js';
import { call } from '../helpers/mail-accounts.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { pySmtpSink } from '../helpers/py-smtp-sink.js';
import { PYTHON, pythonDsn, pythonParts } from '../helpers/python-email.js';
import { swaks } from '../helpers/swaks.js';

const run = promisify(execFile);

/** Subject, bodies and threading headers as Python's email package reads them. */
const READ = String.raw`
import sys, json
from email import policy
from email.parser import BytesParser
m = BytesParser(policy=policy.default).parsebytes(open(sys.argv[1], 'rb').read())
def body(kind):
    b = m.get_body(preferencelist=(kind,))
    return b.get_content() if b is not None else None
print(json.dumps({'subject': str(m['subject']), 'text': body('plain'), 'html': body('html'),
  'inReplyTo': str(m['in-reply-to']), 'references': str(m['references']), 'bcc': m['bcc'],
  'messageId': str(m['message-id']), 'from': str(m['from']), 'to': str(m['to']), 'cc': str(m['cc'])}))
`;

describe('outbound: messages created with status sending go out through the account SMTP server', () => {
  let pr: TestPostroom;
  before(async () => {
    pr = await startTestPostroom({ mail: { fetch: false, outboundRetry: { schedule: ['100ms'], jitter: 0, maxAttempts: 5 } }, delivery: { pollInterval: 100 } });
  });
  after(() => pr?.close());

  /** A profile whose SMTP server is the sink, and an account on it. */
  async function account(port: number): Promise<string> {
    const profile = await call(pr.api, 'POST', '/api/v1/email/profiles', {
      name: `sink-${port}`,
      protocol: 'imap',
      host: '127.0.0.1',
      port: 1, // nothing to fetch from; discovery reports the refusal
      tls: 'none',
      smtp: { host: '127.0.0.1', port, tls: 'none' },
    }, 201);
    const a = await call(pr.api, 'POST', '/api/v1/email/accounts', { profile: profile.id, name: `out-${port}`, username: 'app', password: 'pw', address: 'App <app@example.org>' }, 201);
    assert.equal(a.discovery.ok, false);
    return a.id;
  }

  const settled = (id: string) =>
    waitFor(async () => {
      const m = await call(pr.api, 'GET', `/api/v1/email/messages/${id}`);
      return m.status !== 'sending' ? m : undefined;
    }, 'the message to be sent or fail', 15_000);

  it('a draft is kept and not sent; PATCHed to sending (the REST model path) it goes out once; a second PATCH is 409', async (t) => {
    if (!requirePeer(t, 'aiosmtpd')) return;
    const sink = await pySmtpSink(['250']);
    t.after(() => sink.close());
    const acc = await account(sink.port);
    const draft = await call(pr.api, 'POST', '/rest/v1/model/email/Messages', { account: acc, status: 'draft', to: 'bob@example.net', subject: 'Later', text: 'Sent when switched.\n' }, 201);
    assert.deepEqual([draft.status, draft.delivery], ['draft', null]);
    const kept = await call(pr.api, 'GET', `/api/v1/email/messages/${draft.id}`);
    assert.deepEqual([kept.status, kept.send], ['draft', null], 'no delivery for a draft');
    const switched = await call(pr.api, 'PATCH', `/rest/v1/model/email/Messages/${draft.id}`, { status: 'sending' });
    assert.equal(switched.status, 'sending');
    assert.ok(switched.delivery);
    const m = await settled(draft.id);
    assert.equal(m.status, 'sent', JSON.stringify(m));
    assert.deepEqual(sink.messages().map((x) => x.rcptTo), [['bob@example.net']]);
    const again = await pr.api(`/api/v1/email/messages/${draft.id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 'sending' }) });
    assert.equal(again.status, 409);
    assert.match(((await again.json()) as { detail: string }).detail, /is sent, not a draft/);
  });

  it('a 250: status sent with the reply and Message-ID; the bytes parse to the same subject, bodies, attachments and inline image', async (t) => {
    if (!requirePeer(t, 'aiosmtpd')) return;
    const sink = await pySmtpSink(['250']);
    t.after(() => sink.close());
    const acc = await account(sink.port);
    const pdf = Buffer.from('%PDF-1.4\n% not really a pdf, but bytes to compare\n\x00\x01\x02\xff');
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    const created = await call(pr.api, 'POST', '/api/v1/email/messages', {
      account: acc,
      status: 'sending',
      to: ['Bob <bob@example.net>'],
      cc: 'carol@example.net',
      bcc: ['dave@example.net'],
      subject: 'Zpráva s přílohou ✓',
      text: 'Dobrý den,\nžluťoučký kůň.\n',
      html: '<p>Dobrý den, <img src="cid:logo@postroom"></p>',
      inReplyTo: '<original@example.net>',
      references: ['<root@example.net>', '<original@example.net>'],
      attachments: [
        { filename: 'report.pdf', contentType: 'application/pdf', content: pdf.toString('base64') },
        { filename: 'logo.png', contentType: 'image/png', content: png.toString('base64'), cid: 'logo@postroom' },
      ],
    }, 201);
    assert.equal(created.status, 'sending');
    const m = await settled(created.id);
    assert.equal(m.status, 'sent', JSON.stringify(m));
    assert.equal(m.error, null);
    assert.match(m.send.reply, /^250 /);
    assert.equal(m.messageId, created.messageId);
    assert.equal(m.account, acc);

    const [got] = sink.messages();
    assert.equal(got.mailFrom, 'app@example.org');
    assert.deepEqual(got.rcptTo.sort(), ['bob@example.net', 'carol@example.net', 'dave@example.net']);
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const file = path.join(tmp.dir, 'out.eml');
    writeFileSync(file, got.raw);
    const { stdout } = await run(PYTHON, ['-c', READ, file]);
    const py = JSON.parse(stdout);
    assert.equal(py.subject, 'Zpráva s přílohou ✓');
    assert.equal(py.text.replace(/\r\n/g, '\n'), 'Dobrý den,\nžluťoučký kůň.\n');
    assert.equal(py.html.trim(), '<p>Dobrý den, <img src="cid:logo@postroom"></p>');
    assert.equal(py.inReplyTo, '<original@example.net>');
    assert.equal(py.references, '<root@example.net> <original@example.net>');
    assert.equal(py.bcc, null, 'no Bcc: header on the wire');
    assert.equal(py.messageId, created.messageId);
    const parts = await pythonParts(file);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const pdfPart = parts.find((p) => p.filename === 'report.pdf');
    const pngPart = parts.find((p) => p.filename === 'logo.png');
    assert.equal(pdfPart?.sha256, sha(pdf));
    assert.equal(pdfPart?.disposition, 'attachment');
    assert.equal(pngPart?.sha256, sha(png));
    assert.equal(pngPart?.contentId, 'logo@postroom');
    assert.equal(pngPart?.disposition, 'inline');
    // Listed with the account's messages.
    const listed = await call(pr.api, 'GET', `/api/v1/email/messages?account=${acc}&status=sent`);
    assert.deepEqual(listed.items.map((x: any) => x.id), [created.id]);
  });

  it('a 550 makes the message error, with the reason', async (t) => {
    if (!requirePeer(t, 'aiosmtpd')) return;
    const sink = await pySmtpSink(['550']);
    t.after(() => sink.close());
    const acc = await account(sink.port);
    const created = await call(pr.api, 'POST', '/api/v1/email/messages', { account: acc, to: 'bob@example.net', subject: 'refused', text: 'x' }, 201);
    const m = await settled(created.id);
    assert.equal(m.status, 'error');
    assert.match(m.error, /5\.7\.1.*Refused by policy/);
    assert.equal(m.send.status, 'failed');
    assert.equal(m.send.attempts, 1, 'a permanent refusal is not retried');
  });

  it('a 450 is retried first, then sent', async (t) => {
    if (!requirePeer(t, 'aiosmtpd')) return;
    const sink = await pySmtpSink(['450', '250']);
    t.after(() => sink.close());
    const acc = await account(sink.port);
    const created = await call(pr.api, 'POST', '/api/v1/email/messages', { account: acc, to: 'bob@example.net', subject: 'later', text: 'x' }, 201);
    const m = await settled(created.id);
    assert.equal(m.status, 'sent');
    assert.equal(m.send.attempts, 2);
    assert.equal(sink.messages().length, 2);
  });

  it('refuses a message the account cannot send: unknown account, no recipient, no body', async () => {
    await call(pr.api, 'POST', '/api/v1/email/messages', { account: 'ma_nope', to: 'a@b.c', text: 'x' }, 400);
    const profile = await call(pr.api, 'POST', '/api/v1/email/profiles', { name: 'no-smtp', protocol: 'pop3', host: '127.0.0.1', port: 1, tls: 'none' }, 201);
    const a = await call(pr.api, 'POST', '/api/v1/email/accounts', { profile: profile.id, username: 'u', password: 'p', address: 'u@example.org' }, 201);
    const noSmtp = await call(pr.api, 'POST', '/api/v1/email/messages', { account: a.id, to: 'a@b.c', text: 'x' }, 400);
    assert.match(noSmtp.detail, /no SMTP server/);
  });
});

describe('DSNs: a whole Postroom bounces a refused forward through groups.relay', () => {
  it('swaks → a forward route to a server that answers 550 → the DSN arrives at the relay from <> to the sender; the DSN reads sent', async (t) => {
    if (!requirePeer(t, 'aiosmtpd') || !requirePeer(t, 'swaks')) return;
    const upstream = await pySmtpSink(['550']);
    const relay = await pySmtpSink(['250']);
    t.after(() => Promise.all([upstream.close(), relay.close()]));
    const pr = await startTestPostroom({
      mail: { fetch: false },
      delivery: { pollInterval: 100 },
      routes: [{ name: 'upstream', match: { recipient: '*@relay.test' }, deliver: [{ forward: { host: '127.0.0.1', port: upstream.port, starttls: 'never', helo: 'mx.postroom.test' } }] }],
      groups: { relay: { host: '127.0.0.1', port: relay.port, starttls: 'never' } },
    });
    t.after(() => pr.close());

    const sent = await swaks(pr.smtpPort, ['--from', 'alice@example.org', '--to', 'bob@relay.test', '--header', 'Subject: will bounce']);
    assert.equal(sent.code, 0, sent.out);
    const [got, ...extra] = await waitFor(() => (relay.messages().length ? relay.messages() : undefined), 'the DSN at the relay', 15_000);
    assert.equal(extra.length, 0);
    assert.equal(got.mailFrom, '<>'); // aiosmtpd's spelling of MAIL FROM:<>
    assert.deepEqual(got.rcptTo, ['alice@example.org']);
    assert.equal(upstream.messages().length, 1);
    const dsn = pythonDsn(got.raw);
    assert.equal(dsn.type, 'multipart/report');
    assert.equal(dsn.reportType, 'delivery-status');
    assert.equal(dsn.perMessage['reporting-mta'], 'dns; mx.postroom.test');
    assert.deepEqual(
      dsn.recipients.map((r) => [r['final-recipient'], r.action, r.status]),
      [['rfc822; bob@relay.test', 'failed', '5.7.1']],
    );

    // The DSN is a message of its own (ingress dsn), sent through the delivery queue.
    const mine = await waitFor(async () => {
      const rows = await pr.db.kysely.selectFrom('messages').select(['id', 'status', 'mail_from', 'error']).where('ingress', '=', 'dsn').execute();
      return rows.length === 1 && rows[0].status !== 'sending' ? rows[0] : undefined;
    }, 'the DSN status to settle');
    assert.equal(mine.status, 'sent', mine.error ?? '');
    assert.equal(mine.mail_from, '');
    const original = await pr.db.kysely.selectFrom('messages').select(['status', 'error']).where('ingress', '=', 'smtp').executeTakeFirstOrThrow();
    assert.equal(original.status, 'failed');
    assert.match(original.error ?? '', /550 5\.7\.1 Refused by policy \(DSN \S+ queued for <alice@example\.org>\)/);
  });
});
