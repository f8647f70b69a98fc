import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import pino from 'pino';
import { mailError } from '../../src/core/errors.js';
import type { Envelope, StoredMessage } from '../../src/core/message.js';
import { validateConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import type { AcceptOptions } from '../../src/intake/accept.js';
import type { RecipientCheck } from '../../src/core/message.js';
import { createSmtpIngress } from '../../src/ingress/smtp.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { freePort, requirePeer, waitFor } from '../helpers/env.js';
import { swaks } from '../helpers/swaks.js';

/**
 * The SMTP ingress alone, in front of an accept() we control: how each outcome of keeping
 * becomes a reply, a metric and one log line.
 */
async function ingress(
  keep: (env: Envelope, bytes: Buffer, opts: AcceptOptions) => Promise<Partial<StoredMessage>>,
  opts: { smtp?: ConfigInput['smtp']; recipientCheck?: RecipientCheck } = {},
) {
  const port = await freePort();
  const config = validateConfig({ smtp: { listen: `127.0.0.1:${port}`, ...(opts.smtp ?? {}) } }).smtp;
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  const metrics = createMetrics();
  const smtp = createSmtpIngress({
    config,
    hostname: 'mx.postroom.test',
    log: pino({ level: 'info' }, sink),
    metrics,
    recipientCheck: opts.recipientCheck ?? (async () => {}),
    async accept(env, raw, o = {}) {
      const chunks: Buffer[] = [];
      for await (const c of raw) chunks.push(Buffer.from(c));
      const m = await keep(env, Buffer.concat(chunks), o);
      return { id: 'm1', size: Buffer.concat(chunks).length, ...m } as StoredMessage;
    },
  });
  await smtp.listen();
  const metric = async (name: string) => (await metrics.registry.getSingleMetricAsString(name)).split('\n').filter((l) => !l.startsWith('#'));
  return { port, smtp, lines, metric, transactions: () => lines.filter((l) => l.msg === 'smtp transaction') };
}

const send = ['--from', 'a@example.org', '--to', 'inbox@postroom.test'];

describe('SMTP ingress outcomes, with swaks', () => {
  test('a failure to keep is 451 4.3.0, a full disk 452 4.3.1: never a 5xx', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    let fail: unknown = mailError('STORE_FAILED');
    const s = await ingress(async () => {
      throw fail;
    });
    try {
      const r1 = await swaks(s.port, send);
      assert.ok(r1.replies.includes('451 4.3.0 Could not store the message; try again later'), r1.out);
      // What intake raises when the disk fills is an errno error; the mapping lives in errors.ts.
      fail = Object.assign(new Error('write failed'), { code: 'ENOSPC' });
      const r2 = await swaks(s.port, send);
      assert.ok(r2.replies.includes('452 4.3.1 Insufficient storage; try again later'), r2.out);
      fail = new Error('something unexpected with internals in it');
      const r3 = await swaks(s.port, send);
      assert.ok(r3.replies.includes('451 4.3.0 Internal error; try again later'), r3.out);
      assert.deepEqual(
        s.transactions().map((l) => [l.outcome, l.status]),
        [
          ['deferred', '4.3.0'],
          ['deferred', '4.3.1'],
          ['deferred', '4.3.0'],
        ],
      );
    } finally {
      await s.smtp.close();
    }
  });

  test('RCPT-time verdicts come from the recipient check, as toSmtpReply words them', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const check: RecipientCheck = async (rcpt, ctx) => {
      assert.equal(ctx.ingress, 'smtp');
      assert.equal(ctx.clientIp, '127.0.0.1');
      assert.equal(ctx.trusted, true);
      if (rcpt.startsWith('nobody@')) throw mailError('UNKNOWN_RECIPIENT', `No such recipient here: <${rcpt}>`);
    };
    const s = await ingress(async () => ({}), { recipientCheck: check });
    try {
      const r = await swaks(s.port, ['--from', 'a@example.org', '--to', 'nobody@postroom.test']);
      assert.ok(r.replies.includes('550 5.1.1 No such recipient here: <nobody@postroom.test>'), r.out);
      assert.deepEqual(await s.metric('postroom_rejections_total'), ['postroom_rejections_total{ingress="smtp",status="5.1.1"} 1']);
      // Logged when the connection closes (QUIT), which may be just after swaks exits.
      const tx = await waitFor(() => s.transactions().at(-1), 'the transaction log line');
      assert.equal(tx.outcome, 'abandoned');
      assert.equal(tx.status, '5.1.1');
    } finally {
      await s.smtp.close();
    }
  });

  test('writes one JSON log line per transaction: id, client, helo, envelope, size, outcome, enhanced code', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    let seen: { env?: Envelope; opts?: AcceptOptions } = {};
    const s = await ingress(async (env, _b, opts) => {
      seen = { env, opts };
      return { id: 'msg-42' };
    }, { smtp: { requireMessageId: true, maxMessageSize: '1MiB', traceHeader: false } });
    try {
      const r = await swaks(s.port, [...send, '--ehlo', 'client.example.org']);
      assert.ok(r.replies.includes('250 2.0.0 Ok: kept as msg-42'), r.out);
      // The session's facts go along for sender authentication (intake verifies when auth.enabled).
      assert.deepEqual(seen.opts, {
        maxSize: 1024 * 1024,
        requireMessageId: true,
        trace: false,
        authenticate: { ip: '127.0.0.1', helo: 'client.example.org', mailFrom: 'a@example.org' },
        authPolicy: undefined,
      });
      assert.equal(seen.env?.helo, 'client.example.org');
      const tx = s.transactions();
      assert.equal(tx.length, 1);
      assert.equal(tx[0].id, 'msg-42');
      assert.equal(tx[0].client, '127.0.0.1');
      assert.equal(tx[0].helo, 'client.example.org');
      assert.equal(tx[0].mailFrom, 'a@example.org');
      assert.deepEqual(tx[0].rcptTo, ['inbox@postroom.test']);
      assert.equal(typeof tx[0].size, 'number');
      assert.equal(tx[0].outcome, 'accepted');
      assert.equal(tx[0].status, '2.0.0');
      await waitFor(async () => (await s.metric('postroom_smtp_sessions'))[0] === 'postroom_smtp_sessions 0', 'the session gauge back at 0');
    } finally {
      await s.smtp.close();
    }
  });
});
