import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { requirePeer, waitFor } from '../helpers/env.js';
import { call } from '../helpers/mail-accounts.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { pySmtpSink } from '../helpers/py-smtp-sink.js';

/**
 * Messages sent through an account (and drafts) are parsed by the parser received mail goes
 * through, at once, so the REST model's content paths answer for them: /html, /attachments,
 * /inlines, /rawMessage, under the seed's names and Postroom's. aiosmtpd is the SMTP server.
 */
describe('sent messages read like received ones, with aiosmtpd as the SMTP server', () => {
  let pr: TestPostroom;
  before(async () => {
    // The parse poll would take an API message only after a minute: a parse within the wait
    // below is the one the send asked for.
    pr = await startTestPostroom({ mail: { fetch: false, outboundRetry: { schedule: ['100ms'], jitter: 0, maxAttempts: 5 } }, delivery: { pollInterval: 100 } });
  });
  after(() => pr?.close());

  async function account(port: number): Promise<string> {
    const profile = await call(pr.api, 'POST', '/api/v1/email/profiles', {
      name: `sink-${port}`, protocol: 'imap', host: '127.0.0.1', port: 1, tls: 'none', smtp: { host: '127.0.0.1', port, tls: 'none' },
    }, 201);
    const a = await call(pr.api, 'POST', '/api/v1/email/accounts', { profile: profile.id, name: `out-${port}`, username: 'app', password: 'pw', address: 'app@example.org' }, 201);
    return a.id;
  }

  const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
  const pdf = Buffer.from('%PDF-1.4\n\x00\x01\xff bytes to compare');
  const message = (acc: string, status: 'sending' | 'draft') => ({
    account: acc,
    status,
    to: 'bob@example.net',
    subject: `Report (${status})`,
    text: 'See the report.\n',
    html: '<p>See the report. <img src="cid:logo@postroom"></p>',
    attachments: [
      { filename: 'report.pdf', contentType: 'application/pdf', content: pdf.toString('base64') },
      { filename: 'logo.png', contentType: 'image/png', content: png.toString('base64'), cid: 'logo@postroom' },
    ],
  });

  async function bytes(path: string): Promise<Buffer> {
    const res = await pr.api(path);
    assert.equal(res.status, 200, `${path}: ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  }

  /** The content paths of message `id`, under the seed's and Postroom's names. */
  async function assertReadable(id: string): Promise<void> {
    const parsed = await waitFor(async () => {
      const r = await call(pr.api, 'GET', `/rest/v1/model/email/Messages/${id}/attachments`);
      return r.items.length ? r : undefined;
    }, 'the attachments of the sent message (its parse)', 15_000);
    assert.deepEqual(parsed.items.map((p: { filename: string }) => p.filename).sort(), ['logo.png', 'report.pdf']);
    const report = parsed.items.find((p: { filename: string }) => p.filename === 'report.pdf');
    assert.ok(pdf.equals(await bytes(`/rest/v1/model/email/Messages/${id}/attachments/${report.id}`)));
    assert.deepEqual(await call(pr.api, 'GET', `/api/v1/messages/${id}/attachments`), parsed);
    for (const path of [`/rest/v1/model/email/Messages/${id}/html`, `/api/v1/messages/${id}/html`]) {
      assert.equal((await bytes(path)).toString('utf8'), '<p>See the report. <img src="cid:logo@postroom"></p>');
    }
    const inlines = await call(pr.api, 'GET', `/rest/v1/model/email/Messages/${id}/inlines`);
    assert.deepEqual(inlines.items.map((p: { filename: string }) => p.filename), ['logo.png']);
    assert.ok(png.equals(await bytes(`/rest/v1/model/email/Messages/${id}/inlines/logo@postroom`)));
    assert.match((await bytes(`/rest/v1/model/email/Messages/${id}/rawMessage`)).toString('latin1'), /^Subject: Report/m);
    const m = await call(pr.api, 'GET', `/api/v1/messages/${id}`);
    assert.equal(m.parseStatus, 'parsed', JSON.stringify(m));
  }

  it('a sent message: status sent, and its html, attachments and inline image read back', async (t) => {
    if (!requirePeer(t, 'aiosmtpd')) return;
    const sink = await pySmtpSink(['250']);
    t.after(() => sink.close());
    const acc = await account(sink.port);
    const created = await call(pr.api, 'POST', '/rest/v1/model/email/Messages', message(acc, 'sending'), 201);
    const sent = await waitFor(async () => {
      const m = await call(pr.api, 'GET', `/api/v1/email/messages/${created.id}`);
      return m.status === 'sent' ? m : undefined;
    }, 'the message sent', 15_000);
    assert.equal(sent.send.status, 'done');
    await assertReadable(created.id);
    // Parsing did not route it: no delivery beside its outbound one.
    const dl = await pr.db.kysely.selectFrom('deliveries').select('kind').where('message', '=', created.id).execute();
    assert.deepEqual(dl.map((d) => d.kind), ['outbound']);
  });

  it('a draft reads back before it is sent', async (t) => {
    if (!requirePeer(t, 'aiosmtpd')) return;
    const sink = await pySmtpSink(['250']);
    t.after(() => sink.close());
    const acc = await account(sink.port);
    const draft = await call(pr.api, 'POST', '/rest/v1/model/email/Messages', message(acc, 'draft'), 201);
    await assertReadable(draft.id);
    assert.equal((await call(pr.api, 'GET', `/api/v1/email/messages/${draft.id}`)).status, 'draft');
    assert.equal(sink.messages().length, 0);
  });
});
