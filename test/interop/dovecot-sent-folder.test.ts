import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { requirePeer, skipWithout, waitFor } from '../helpers/env.js';
import { call } from '../helpers/mail-accounts.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { pySmtpSink } from '../helpers/py-smtp-sink.js';

/** A message sent through an account whose profile names a Sent folder is appended there over IMAP (a real Dovecot). */
describe('sent mail appended to the Sent folder', { skip: skipWithout('sent mail appended to the Sent folder', 'dovecot', 'aiosmtpd') }, () => {
  let dc: Dovecot;
  let pr: TestPostroom;
  before(async () => {
    dc = await startDovecot();
    pr = await startTestPostroom({ mail: { fetch: false }, delivery: { pollInterval: 100 } });
  });
  after(async () => {
    await pr?.close();
    await dc?.stop();
  });

  it('sent (250 from the SMTP sink), then a copy in Sent flagged \\Seen; the receipt says so', async (t) => {
    if (!requirePeer(t, 'dovecot', 'aiosmtpd')) return;
    const sink = await pySmtpSink(['250']);
    t.after(() => sink.close());
    const profile = await call(pr.api, 'POST', '/api/v1/email/profiles', {
      name: 'dovecot',
      protocol: 'imap',
      host: dc.host,
      port: dc.imapPort,
      tls: 'none',
      smtp: { host: '127.0.0.1', port: sink.port, tls: 'none' },
      options: { sent_folder: 'Sent' },
    }, 201);
    const account = await call(pr.api, 'POST', '/api/v1/email/accounts', { profile: profile.id, name: 'me', username: dc.user, password: dc.pass, address: 'me@example.org' }, 201);
    const created = await call(pr.api, 'POST', '/rest/v1/model/email/Messages', { account: account.id, to: 'bob@example.net', subject: 'Filed in Sent', text: 'Hello.\n' }, 201);
    const m = await waitFor(async () => {
      const x = await call(pr.api, 'GET', `/api/v1/email/messages/${created.id}`);
      return x.status !== 'sending' ? x : undefined;
    }, 'the message sent', 20_000);
    assert.equal(m.status, 'sent', JSON.stringify(m));
    assert.equal(sink.messages().length, 1);
    const d = await call(pr.api, 'GET', `/api/v1/deliveries/${m.send.delivery}`);
    assert.match(JSON.stringify(d), /"sentFolder":"appended to Sent"/, JSON.stringify(d));
    assert.deepEqual(await dc.messageIds('Sent'), [created.messageId]);
    const client = await dc.client();
    try {
      await client.mailboxOpen('Sent');
      const [msg] = await client.fetchAll('1:*', { flags: true });
      assert.ok(msg.flags?.has('\\Seen'), 'flagged \\Seen');
    } finally {
      await client.logout();
    }
  });
});
