import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { requirePeer, waitFor } from '../helpers/env.js';
import { startTestPostroom } from '../helpers/postroom.js';
import { pySmtpSink } from '../helpers/py-smtp-sink.js';
import { pythonDsn } from '../helpers/python-email.js';
import { swaks } from '../helpers/swaks.js';

/**
 * A forward to three recipients where the upstream (aiosmtpd) answers RCPT TO with 250, 450
 * and 550: each recipient keeps its own state across attempts. The accepted one gets one copy,
 * the deferred one is retried alone, the refused one is bounced, and when the delivery dies the
 * sender gets one DSN naming everyone undelivered with the reply each last had.
 */
describe('a forward keeps each recipient\'s outcome (aiosmtpd upstream, swaks sender)', () => {
  async function rig(t: import('node:test').TestContext, rcpt: Record<string, '250' | '450' | '550'>) {
    const upstream = await pySmtpSink(['250'], rcpt);
    const relay = await pySmtpSink(['250']);
    t.after(() => Promise.all([upstream.close(), relay.close()]));
    const pr = await startTestPostroom({
      mail: { fetch: false },
      delivery: { pollInterval: 50 },
      routes: [
        {
          name: 'upstream',
          match: { recipient: '*@relay.test' },
          deliver: [{ forward: { host: '127.0.0.1', port: upstream.port, starttls: 'never', helo: 'mx.postroom.test' } }],
          retry: { schedule: ['200ms'], jitter: 0, maxAttempts: 3 },
        },
      ],
      groups: { relay: { host: '127.0.0.1', port: relay.port, starttls: 'never' } },
    });
    t.after(() => pr.close());
    const sent = await swaks(pr.smtpPort, ['--from', 'alice@example.org', '--to', 'ok@relay.test,busy@relay.test,gone@relay.test', '--header', 'Subject: three ways']);
    assert.equal(sent.code, 0, sent.out);
    return { upstream, relay, pr };
  }

  const asked = (log: string[], who: string) => log.filter((l) => l.startsWith(`${who}@`)).length;

  it('250 / 450 / 550: one copy for the accepted, retries for the deferred only, one DSN naming both undelivered when it dies', async (t) => {
    if (!requirePeer(t, 'aiosmtpd', 'swaks')) return;
    const { upstream, relay, pr } = await rig(t, { ok: '250', busy: '450', gone: '550' });
    const d = await waitFor(async () => {
      const row = await pr.db.kysely.selectFrom('deliveries').select(['id', 'status', 'last_error']).where('route', '=', 'upstream').executeTakeFirst();
      return row && row.status !== 'pending' ? row : undefined;
    }, 'the forward delivery to die', 30_000);
    assert.equal(d.status, 'dead', d.last_error ?? '');

    // The accepted recipient got exactly one copy; the refused one was asked once; the deferred
    // one once per attempt.
    const copies = upstream.messages();
    assert.deepEqual(copies.map((m) => m.rcptTo), [['ok@relay.test']]);
    const log = upstream.rcpts();
    assert.equal(asked(log, 'ok'), 1, log.join('\n'));
    assert.equal(asked(log, 'gone'), 1, log.join('\n'));
    assert.equal(asked(log, 'busy'), 3, log.join('\n'));

    // One DSN, from <> to the sender, Action: failed for both, each with its own status.
    const [dsnMail, ...more] = await waitFor(() => (relay.messages().length ? relay.messages() : undefined), 'the DSN at the relay', 20_000);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(more.length + relay.messages().length - 1, 0, 'one DSN only');
    assert.equal(dsnMail.mailFrom, '<>');
    assert.deepEqual(dsnMail.rcptTo, ['alice@example.org']);
    const dsn = pythonDsn(dsnMail.raw);
    assert.deepEqual(
      dsn.recipients.map((r) => [r['final-recipient'], r.action, r.status]).sort(),
      [
        ['rfc822; busy@relay.test', 'failed', '4.2.1'],
        ['rfc822; gone@relay.test', 'failed', '5.1.1'],
      ],
    );
    assert.match(d.last_error ?? '', /DSN \S+ queued for <alice@example\.org>/);

    // The API shows each recipient's outcome.
    const res = await pr.api(`/api/v1/deliveries/${d.id}`);
    const body = (await res.json()) as { recipientOutcomes: { recipient: string; status: string; enhancedStatus: string }[] };
    assert.deepEqual(
      body.recipientOutcomes.map((o) => `${o.recipient} ${o.status} ${o.enhancedStatus}`).sort(),
      ['busy@relay.test deferred 4.2.1', 'gone@relay.test failed 5.1.1', 'ok@relay.test done 2.0.0'],
    );
  });

  it('250 / 550: done at once, one DSN for the refused one, the accepted one not sent again', async (t) => {
    if (!requirePeer(t, 'aiosmtpd', 'swaks')) return;
    const { upstream, relay, pr } = await rig(t, { gone: '550' });
    const d = await waitFor(async () => {
      const row = await pr.db.kysely.selectFrom('deliveries').select(['id', 'status', 'receipt']).where('route', '=', 'upstream').executeTakeFirst();
      return row && row.status !== 'pending' ? row : undefined;
    }, 'the forward delivery to finish', 20_000);
    assert.equal(d.status, 'done');
    assert.deepEqual(JSON.parse(d.receipt ?? '{}').rejected, ['gone@relay.test']);
    assert.deepEqual(upstream.messages().map((m) => m.rcptTo), [['ok@relay.test', 'busy@relay.test']]);
    const [dsnMail] = await waitFor(() => (relay.messages().length ? relay.messages() : undefined), 'the DSN at the relay', 20_000);
    assert.deepEqual(pythonDsn(dsnMail.raw).recipients.map((r) => [r['final-recipient'], r.status]), [['rfc822; gone@relay.test', '5.1.1']]);
  });
});
