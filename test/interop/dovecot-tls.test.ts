import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { imapClient } from '../../src/ingress/fetch/imap-session.js';
import { imapFailure } from '../../src/net/remote-answer.js';
import { Pop3Session } from '../../src/ingress/fetch/pop3-client.js';
import { startDovecot, testMessage, type Dovecot } from '../helpers/dovecot.js';
import { requirePeer, skipWithout } from '../helpers/env.js';

/**
 * The TLS modes of a mail profile (none | starttls | tls) against a real Dovecot with a
 * self-signed certificate: each mode reaches the mailbox, and with verification on (the
 * default) the unverifiable certificate is refused before any password is sent.
 */
describe('IMAP and POP3 over TLS against a real Dovecot', { skip: skipWithout('IMAP and POP3 over TLS against a real Dovecot', 'dovecot') }, () => {
  let dc: Dovecot;
  before(async () => {
    dc = await startDovecot({ tls: true });
    await dc.append('INBOX', [testMessage('tls-1')]);
  });
  after(() => dc?.stop());

  const imapCount = async (port: number, tls: 'starttls' | 'tls', tlsVerify: boolean) => {
    const c = await imapClient({ host: dc.host, port, tls, tlsVerify, username: dc.user, password: dc.pass } as Parameters<typeof imapClient>[0]);
    c.on('error', () => {});
    try {
      await c.connect();
      const st = await c.status('INBOX', { messages: true });
      return { messages: st ? st.messages : undefined };
    } finally {
      await c.logout().catch(() => c.close());
    }
  };

  for (const tls of ['starttls', 'tls'] as const) {
    it(`IMAP ${tls}: reaches the mailbox; an unverifiable certificate is refused with verification on`, async (t) => {
      if (!requirePeer(t, 'dovecot')) return;
      const port = tls === 'tls' ? dc.imapsPort! : dc.imapPort;
      assert.equal((await imapCount(port, tls, false)).messages, 1);
      const err = await imapCount(port, tls, true).then(
        () => undefined,
        (e: unknown) => imapFailure(e, dc.host),
      );
      assert.ok(err, 'a self-signed certificate must not pass verification');
      assert.equal(err.disposition, 'transient');
    });

    it(`POP3 ${tls}: reaches the mailbox; an unverifiable certificate is refused with verification on`, async (t) => {
      if (!requirePeer(t, 'dovecot')) return;
      const port = tls === 'tls' ? dc.pop3sPort! : dc.pop3Port;
      const s = await Pop3Session.open({ host: dc.host, port, tls, tlsVerify: false, username: dc.user, password: dc.pass });
      assert.equal((await s.list()).size, 1);
      await s.quit();
      await assert.rejects(Pop3Session.open({ host: dc.host, port, tls, tlsVerify: true, username: dc.user, password: dc.pass }));
    });
  }
});
