import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { requirePeer, skipWithout, testBackend, waitFor } from '../helpers/env.js';
import { call, enableFolder, folderMessages } from '../helpers/mail-accounts.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { pySmtpSink } from '../helpers/py-smtp-sink.js';

/** A message as a mail client APPENDs it to its Outbox. */
function outgoing(n: string, opts: { subject?: string; extra?: string[] } = {}): string {
  return [
    'From: Me <me@example.org>',
    'To: Bob <bob@example.net>',
    'Cc: carol@example.net',
    ...(opts.extra ?? []),
    `Subject: ${opts.subject ?? n}`,
    `Message-ID: <${n}@client.example>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `body ${n}`,
    '',
  ].join('\r\n');
}

/**
 * send_on_arrival: messages appearing in an account's Outbox on a real Dovecot are sent
 * through the account's SMTP server (aiosmtpd), when they match the folder's message search.
 */
describe(`sending that follows a folder: Dovecot Outbox, aiosmtpd (${testBackend()})`, { skip: skipWithout('send on arrival', 'dovecot', 'aiosmtpd') }, () => {
  let dc: Dovecot;
  let pr: TestPostroom;
  let sink: Awaited<ReturnType<typeof pySmtpSink>>;
  let outbox: string;

  before(async () => {
    dc = await startDovecot();
    sink = await pySmtpSink(['250']);
    await dc.append('Outbox', []);
    pr = await startTestPostroom({ mail: { rescanInterval: 1000 }, delivery: { pollInterval: '200ms' } });
    const profile = await call(pr.api, 'POST', '/api/v1/email/profiles', {
      name: 'dovecot', protocol: 'imap', host: dc.host, port: dc.imapPort, tls: 'none', smtp: { host: '127.0.0.1', port: sink.port, tls: 'none' },
    }, 201);
    const account = await call(pr.api, 'POST', '/api/v1/email/accounts', { profile: profile.id, name: 'me', username: dc.user, password: dc.pass, address: 'me@example.org' }, 201);
    outbox = account.folders.find((f: { path: string }) => f.path === 'Outbox').id;
    // The rule is a message search: only subjects with [send] and no attachment go out.
    await enableFolder(pr.api, outbox, { deleteOnServer: true, options: { send_on_arrival: 'subject:[send] -has:attachment' } });
  });
  after(async () => {
    await pr?.close();
    await dc?.stop();
    await sink?.close();
  });

  /** The message of that subject from the Outbox, with its error (GET …/Messages/ID), once `done` says so. */
  const message = (subject: string, done: (m: any) => boolean) =>
    waitFor(async () => {
      const s = (await folderMessages(pr.api, outbox)).find((x) => x.subject === subject);
      const m = s && (await call(pr.api, 'GET', `/rest/v1/model/email/Messages/${s.id}`));
      return m && done(m) ? m : undefined;
    }, `${subject}`, 20_000);
  const settled = (subject: string) => message(subject, (m) => m.status !== 'received' && m.status !== 'sending');
  // Routed as usual and taken by no route: the planner says so in `error`.
  const unrouted = (subject: string) => message(subject, (m) => !!m.error);

  it('a matching message is switched to sending and sent to its To: and Cc: from its From:; one that does not match is routed as usual', async (t) => {
    if (!requirePeer(t, 'dovecot', 'aiosmtpd')) return;
    await dc.append('Outbox', [outgoing('o1', { subject: 'Quote [send]' }), outgoing('o2', { subject: 'Just a note' })]);
    const sent = await settled('Quote [send]');
    assert.equal(sent.status, 'sent', JSON.stringify(sent));
    const detail = sent;
    assert.equal(detail.send.status, 'done');
    assert.match(detail.send.reply, /^250 /);
    const [got] = sink.messages();
    assert.equal(got.mailFrom, 'me@example.org');
    assert.deepEqual(got.rcptTo.sort(), ['bob@example.net', 'carol@example.net']);
    assert.match(got.raw.toString('latin1'), /^Message-ID: <o1@client\.example>/m);
    // The other one stays received mail: no route takes it, nothing is sent.
    const note = await unrouted('Just a note');
    assert.equal(note.status, 'received');
    assert.equal(sink.messages().length, 1);
  });

  it('a matching message with a Bcc: header is not sent: status error, saying why', async (t) => {
    if (!requirePeer(t, 'dovecot', 'aiosmtpd')) return;
    const before = sink.messages().length;
    await dc.append('Outbox', [outgoing('o3', { subject: 'Secret [send]', extra: ['Bcc: eve@example.net'] })]);
    const m = await settled('Secret [send]');
    assert.equal(m.status, 'error');
    assert.match(m.error, /Bcc: header/);
    assert.equal(sink.messages().length, before);
  });

  it('false on the folder turns an account-wide rule off there', async (t) => {
    if (!requirePeer(t, 'dovecot', 'aiosmtpd')) return;
    const f = await call(pr.api, 'GET', `/api/v1/email/folders/${outbox}`);
    await call(pr.api, 'PATCH', `/api/v1/email/accounts/${f.account}`, { options: { send_on_arrival: true } });
    await call(pr.api, 'PATCH', `/api/v1/email/folders/${outbox}`, { options: { send_on_arrival: false } });
    const before = sink.messages().length;
    await dc.append('Outbox', [outgoing('o4', { subject: 'Stays [send]' })]);
    const m = await unrouted('Stays [send]');
    assert.equal(m.status, 'received');
    assert.equal(sink.messages().length, before);
  });

  it('a search that does not parse is refused when set (400)', async () => {
    const res = await pr.api(`/api/v1/email/folders/${outbox}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ options: { send_on_arrival: 'larger:lots' } }),
    });
    assert.equal(res.status, 400, await res.text());
  });
});
