import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { PlannedDelivery, Target } from '../../src/core/delivery.js';
import { DSN_ROUTE } from '../../src/delivery/keep-outbound.js';
import { groupsSchema, type GroupsConfig } from '../../src/domain/groups/config.js';
import { createDsnTarget } from '../../src/outbound/send-dsn.js';
import { getAttempts, getDelivery, listDeliveries, retryDelivery, type DeliveryRecord } from '../../src/store/deliveries.js';
import { forwardParams, forwardTarget } from '../../src/targets/forward.js';
import { deliveryRig, fastRetry, messageStatus, type DeliveryRig } from '../helpers/delivery.js';
import { freePort, portAnswers, requirePeer, tempDir, waitFor } from '../helpers/env.js';
import { pySmtpSink } from '../helpers/py-smtp-sink.js';
import { PYTHON, pythonDsn } from '../helpers/python-email.js';

// Lines that start with '.', a line that is only '.', and one that is '..': all must survive
// the relay's dot-stuffing (RFC 5321 §4.5.2) and reach the far side unchanged, CRLF intact.
const RAW = [
  'From: Jan Novak <jan@example.org>',
  'To: upstream@relay.test',
  'Subject: forward me',
  'Message-ID: <fwd-1@example.org>',
  '',
  'first line',
  '.leading dot',
  '.',
  '..',
  'last line',
  '',
].join('\r\n');

const TRACE = 'Received: from client.test ([127.0.0.1])\r\n\tby mx.postroom.test (Postroom) with ESMTP id x1;\r\n\tSat, 21 Nov 2026 06:00:00 +0000\r\n';

/** Postfix smtp-sink on a free port dumping each message into its own file. */
async function smtpSink(extra: string[] = []): Promise<{ port: number; dumps(): string[]; close(): Promise<void> }> {
  const tmp = tempDir('smtp-sink-');
  chmodSync(tmp.dir, 0o777); // smtp-sink writes as `nobody`
  const port = await freePort();
  const child: ChildProcess = spawn('smtp-sink', ['-u', 'nobody', ...extra, '-d', `${tmp.dir}/%M.`, `127.0.0.1:${port}`, '100'], {
    stdio: 'ignore',
  });
  await waitFor(() => portAnswers(port), 'smtp-sink listening');
  return {
    port,
    dumps: () =>
      readdirSync(tmp.dir)
        .sort()
        .map((f) => readFileSync(path.join(tmp.dir, f), 'latin1')),
    async close() {
      child.kill();
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
      tmp.cleanup();
    },
  };
}

/** Keep RAW, queue one forward delivery of it, and wait until `until` holds for the delivery. */
async function forwardVia(
  rig: DeliveryRig,
  route: string,
  params: Record<string, unknown>,
  until: (d: DeliveryRecord) => boolean,
  mailFrom = 'sender@example.org',
  trace?: string,
) {
  const m = await rig.keep(RAW, { mailFrom, rcptTo: ['upstream@relay.test'] }, { trace });
  const p: PlannedDelivery = {
    route,
    targetIndex: 0,
    kind: 'forward',
    params: forwardParams.parse({ helo: 'postroom.test', starttls: 'never', ...params }),
    recipients: ['upstream@relay.test'],
    captures: {},
  };
  return rig.deliverOne(m, p, until);
}

describe('forward target against real SMTP sinks', () => {
  let rig: DeliveryRig;
  before(async () => {
    rig = await deliveryRig();
    rig.worker(new Map([['forward', forwardTarget]]), { retry: fastRetry({ schedule: ['100ms'] }) }).start();
  });
  after(async () => {
    await rig.cleanup();
  });

  const forward = (route: string, params: Record<string, unknown>, until: (d: DeliveryRecord) => boolean, mailFrom?: string, trace?: string) =>
    forwardVia(rig, route, params, until, mailFrom, trace);

  it('relays to Postfix smtp-sink: envelope kept, lines starting with a dot survive', async (t) => {
    if (!requirePeer(t, 'smtp-sink')) return;
    const sink = await smtpSink();
    try {
      const { m, d } = await forward('sink', { host: '127.0.0.1', port: sink.port }, (r) => r.status !== 'pending');
      assert.equal(d.status, 'done', d.lastError ?? '');
      assert.match(d.receipt?.summary ?? '', /^250 /);
      assert.equal(await messageStatus(rig.db, m.id), 'delivered');
      const [dump] = await waitFor(() => (sink.dumps().length ? sink.dumps() : undefined), 'smtp-sink dump');
      assert.match(dump, /^X-Mail-Args: <sender@example\.org>$/m);
      assert.match(dump, /^X-Rcpt-Args: <upstream@relay\.test>$/m);
      // smtp-sink writes its dump with LF line ends, after its own X-* and Received: lines,
      // and ends it with one empty line of its own.
      const body = dump.slice(dump.indexOf('From: Jan Novak'));
      assert.equal(body, `${RAW.replace(/\r\n/g, '\n')}\n`);
    } finally {
      await sink.close();
    }
  });

  it('arrives byte for byte with CRLF; a sink that says 450 then 250 gets it on the retry', async (t) => {
    if (!requirePeer(t, 'aiosmtpd')) return;
    const sink = await pySmtpSink(['450', '250']);
    try {
      const { d, attempts } = await forward('soft', { host: '127.0.0.1', port: sink.port }, (r) => r.status !== 'pending');
      assert.equal(d.status, 'done', d.lastError ?? '');
      assert.deepEqual(attempts.map((a) => a.outcome), ['transient', 'done']);
      assert.match(attempts[0].error ?? '', /^4\.3\.0 127\.0\.0\.1 said: 450 4\.3\.0 Try again later/);
      const got = sink.messages();
      assert.equal(got.length, 2);
      assert.ok(got[1].raw.equals(Buffer.from(RAW)), `bytes differ:\n${JSON.stringify(got[1].raw.toString('latin1'))}`);
      assert.equal(got[1].mailFrom, 'sender@example.org');
      assert.deepEqual(got[1].rcptTo, ['upstream@relay.test']);
    } finally {
      await sink.close();
    }
  });

  it('rewrites the envelope when the route says so, and prepends the trace header when there is one', async (t) => {
    if (!requirePeer(t, 'aiosmtpd')) return;
    const sink = await pySmtpSink(['250']);
    try {
      const { d } = await forward(
        'rewrite',
        { host: '127.0.0.1', port: sink.port, mailFrom: 'bounces@postroom.test', rcptTo: ['a@relay.test', 'b@relay.test'] },
        (r) => r.status !== 'pending',
        'sender@example.org',
        TRACE,
      );
      assert.equal(d.status, 'done');
      const [got] = sink.messages();
      assert.equal(got.mailFrom, 'bounces@postroom.test');
      assert.deepEqual(got.rcptTo, ['a@relay.test', 'b@relay.test']);
      assert.ok(got.raw.equals(Buffer.from(TRACE + RAW)), 'our Received: line first, then the bytes as received');
    } finally {
      await sink.close();
    }
  });

  it('never sends a DSN to the null sender <>', async (t) => {
    if (!requirePeer(t, 'smtp-sink')) return;
    const sink = await smtpSink(['-f', '.']);
    try {
      const before = await rig.db.kysely.selectFrom('messages').select('id').where('ingress', '=', 'dsn').execute();
      const { d } = await forward('bounce-of-bounce', { host: '127.0.0.1', port: sink.port }, (r) => r.status !== 'pending', '');
      assert.equal(d.status, 'failed');
      assert.doesNotMatch(d.lastError ?? '', /DSN/);
      const afterRows = await rig.db.kysely.selectFrom('messages').select('id').where('ingress', '=', 'dsn').execute();
      assert.equal(afterRows.length, before.length);
    } finally {
      await sink.close();
    }
  });

  it('a relay that is down is a transient failure', async () => {
    const port = await freePort(); // nothing listens here
    const { attempts } = await forward('down', { host: '127.0.0.1', port }, (r) => r.attempts >= 2);
    assert.equal(attempts[0].outcome, 'transient');
    assert.match(attempts[0].error ?? '', /^4\.4\.4 127\.0\.0\.1: .*ECONNREFUSED/);
  });
});

describe('DSNs of the forward target go out through groups.relay', () => {
  let rig: DeliveryRig;
  before(async () => {
    rig = await deliveryRig();
  });
  afterEach(() => rig.stopWorkers());
  after(() => rig.cleanup());

  const relayAt = (port: number) => groupsSchema.parse({ relay: { host: '127.0.0.1', port, starttls: 'never', helo: 'postroom.test' } }).relay;

  /** A worker with the forward target and the dsn target over `relay`. */
  function work(relay: GroupsConfig['relay'], retry = fastRetry({ schedule: ['100ms'] })) {
    const targets = new Map<string, Target<any>>([
      ['forward', forwardTarget],
      ['dsn', createDsnTarget({ relay })],
    ]);
    rig.worker(targets, { retry }).start();
  }

  /** Forward to a refusing server; the failed delivery and the id of the DSN it queued. */
  async function refused(port: number, route: string) {
    const r = await forwardVia(rig, route, { host: '127.0.0.1', port }, (d) => d.status !== 'pending');
    assert.equal(r.d.status, 'failed', r.d.lastError ?? '');
    const dsnId = /\(DSN (\S+) queued for <sender@example\.org>\)/.exec(r.d.lastError ?? '')?.[1];
    assert.ok(dsnId, `no DSN named in: ${r.d.lastError}`);
    const [dsnDelivery, ...more] = await listDeliveries(rig.db.kysely, { message: dsnId, limit: 10 });
    assert.equal(more.length, 0);
    return { ...r, dsnId, dsnDelivery };
  }

  /** The DSN's message row once its delivery settled (status no longer `sending`). */
  const settled = (id: string) =>
    waitFor(async () => {
      const row = await rig.db.kysely.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirst();
      return row && row.status !== 'sending' ? row : undefined;
    }, `DSN ${id} sent or failed`);

  it('a sink that answers 550: the DSN arrives at the relay from <> to the sender, a multipart/report with status 5.7.1', async (t) => {
    if (!requirePeer(t, 'aiosmtpd')) return;
    const upstream = await pySmtpSink(['550']);
    const relay = await pySmtpSink(['250']);
    t.after(() => Promise.all([upstream.close(), relay.close()]));
    work(relayAt(relay.port));

    const { m, d, dsnId, dsnDelivery } = await refused(upstream.port, 'hard-550');
    assert.match(d.lastError ?? '', /^5\.7\.1 127\.0\.0\.1 said: 550 5\.7\.1 Refused by policy \(DSN /);
    assert.equal(await messageStatus(rig.db, m.id), 'failed');
    // Kept and queued in one transaction: the DSN's delivery exists as soon as the forward failed.
    assert.equal(dsnDelivery.route, DSN_ROUTE);
    assert.equal(dsnDelivery.kind, 'dsn');
    assert.deepEqual(dsnDelivery.recipients, ['sender@example.org']);

    const [got, ...extra] = await waitFor(() => (relay.messages().length ? relay.messages() : undefined), 'the DSN at the relay');
    assert.equal(extra.length, 0);
    // aiosmtpd records MAIL FROM:<> as '<>'.
    assert.equal(got.mailFrom, '<>', 'MAIL FROM:<>: a DSN never bounces again');
    assert.deepEqual(got.rcptTo, ['sender@example.org']);
    assert.equal(upstream.messages().length, 1, 'the DSN does not go back to the server that refused');

    const row = await settled(dsnId);
    assert.equal(row.status, 'sent', row.error ?? '');
    assert.equal(row.error, null);
    assert.ok(got.raw.equals(await readAll(await rig.blobs.open(row.raw_sha256))), 'the relay got the DSN as kept');
    const done = await getDelivery(rig.db.kysely, dsnDelivery.id);
    assert.equal(done?.status, 'done');
    assert.match(done?.receipt?.summary ?? '', /^250 2\.0\.0 Ok: queued/);

    const dsn = pythonDsn(got.raw);
    assert.equal(dsn.type, 'multipart/report');
    assert.equal(dsn.reportType, 'delivery-status');
    assert.deepEqual(dsn.parts, ['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
    assert.equal(dsn.to, 'sender@example.org');
    assert.equal(dsn.autoSubmitted, 'auto-replied');
    assert.equal(dsn.perMessage['reporting-mta'], 'dns; postroom.test');
    assert.deepEqual(dsn.recipients, [
      {
        'final-recipient': 'rfc822; upstream@relay.test',
        action: 'failed',
        status: '5.7.1',
        'remote-mta': 'dns; 127.0.0.1',
        'diagnostic-code': 'smtp; 550 5.7.1 Refused by policy',
      },
    ]);
  });

  it('Postfix smtp-sink refusing after the dot: the DSN carries its reply and the original header block, not the body', async (t) => {
    if (!requirePeer(t, 'smtp-sink') || !requirePeer(t, 'aiosmtpd')) return;
    const sink = await smtpSink(['-f', '.']);
    const relay = await pySmtpSink(['250']);
    t.after(() => Promise.all([sink.close(), relay.close()]));
    work(relayAt(relay.port));

    const { d, attempts, dsnId } = await refused(sink.port, 'hard-postfix');
    assert.equal(attempts.length, 1);
    assert.match(d.lastError ?? '', /^5\.3\.0 127\.0\.0\.1 said: 500 5\.3\.0 Error: command failed \(DSN /);
    const dsn = await rig.db.kysely.selectFrom('messages').selectAll().where('id', '=', dsnId).executeTakeFirstOrThrow();
    assert.equal(dsn.mail_from, '', 'a DSN is sent from the null sender');
    assert.deepEqual(JSON.parse(dsn.rcpt_to), ['sender@example.org']);
    assert.equal(dsn.ingress, 'dsn');
    const [got] = await waitFor(() => (relay.messages().length ? relay.messages() : undefined), 'the DSN at the relay');
    const text = got.raw.toString('utf8');
    assert.match(text, /^Content-Type: multipart\/report; report-type=delivery-status;/m);
    assert.match(text, /^Auto-Submitted: auto-replied\r$/m);
    assert.match(text, /^Content-Type: message\/delivery-status\r\n\r\nReporting-MTA: dns; postroom\.test\r\n/m);
    assert.match(text, /^Final-Recipient: rfc822; upstream@relay\.test\r\nAction: failed\r\nStatus: 5\.3\.0\r\nRemote-MTA: dns; 127\.0\.0\.1\r\nDiagnostic-Code: smtp; 500 5\.3\.0 Error: command failed\r$/m);
    assert.match(text, /^Content-Type: text\/rfc822-headers\r\n\r\nFrom: Jan Novak <jan@example\.org>\r\n[\s\S]*Message-ID: <fwd-1@example\.org>\r\n--/m);
    assert.ok(!text.includes('.leading dot'), 'the body is not sent back');
    assert.equal((await settled(dsnId)).status, 'sent');
  });

  it('a replayed forward that is refused again bounces once: the first DSN is named, no second is queued', async (t) => {
    if (!requirePeer(t, 'aiosmtpd')) return;
    const upstream = await pySmtpSink(['550']);
    const relay = await pySmtpSink(['250']);
    t.after(() => Promise.all([upstream.close(), relay.close()]));
    work(relayAt(relay.port));

    const { d, dsnId } = await refused(upstream.port, 'replayed');
    await settled(dsnId);
    const dsnsBefore = await rig.db.kysely.selectFrom('messages').select('id').where('ingress', '=', 'dsn').execute();
    await retryDelivery(rig.db, d.id);
    const again = await waitFor(async () => {
      const r = await getDelivery(rig.db.kysely, d.id);
      return r && r.status === 'failed' && (await getAttempts(rig.db.kysely, d.id)).length === 2 ? r : undefined;
    }, 'the replay to fail again');
    assert.equal(upstream.messages().length, 2, 'the replay reached the upstream');
    assert.match(again.lastError ?? '', new RegExp(`\\(DSN ${dsnId} queued for <sender@example\\.org>\\)`));
    const dsnsAfter = await rig.db.kysely.selectFrom('messages').select('id').where('ingress', '=', 'dsn').execute();
    assert.equal(dsnsAfter.length, dsnsBefore.length);
    assert.equal((await listDeliveries(rig.db.kysely, { route: DSN_ROUTE, limit: 100 })).length, dsnsAfter.length);
  });

  it('a relay that says 450 then 250: the DSN is retried on the queue, then sent', async (t) => {
    if (!requirePeer(t, 'aiosmtpd')) return;
    const upstream = await pySmtpSink(['550']);
    const relay = await pySmtpSink(['450', '250']);
    t.after(() => Promise.all([upstream.close(), relay.close()]));
    work(relayAt(relay.port));

    const { dsnId, dsnDelivery } = await refused(upstream.port, 'relay-busy');
    assert.equal((await settled(dsnId)).status, 'sent');
    const attempts = await getAttempts(rig.db.kysely, dsnDelivery.id);
    assert.deepEqual(attempts.map((a) => a.outcome), ['transient', 'done']);
    assert.match(attempts[0].error ?? '', /^4\.3\.0 127\.0\.0\.1 said: 450 4\.3\.0 Try again later/);
    assert.deepEqual(relay.messages().map((x) => [x.mailFrom, x.rcptTo, x.reply]), [
      ['<>', ['sender@example.org'], '450'],
      ['<>', ['sender@example.org'], '250'],
    ]);
  });

  it('a relay that refuses the DSN (550): status error with the reply, and no DSN of the DSN', async (t) => {
    if (!requirePeer(t, 'aiosmtpd')) return;
    const upstream = await pySmtpSink(['550']);
    const relay = await pySmtpSink(['550']);
    t.after(() => Promise.all([upstream.close(), relay.close()]));
    work(relayAt(relay.port));

    const dsnsBefore = await rig.db.kysely.selectFrom('messages').select('id').where('ingress', '=', 'dsn').execute();
    const { dsnId, dsnDelivery } = await refused(upstream.port, 'relay-refuses');
    const row = await settled(dsnId);
    assert.equal(row.status, 'error');
    assert.match(row.error ?? '', /^5\.7\.1 127\.0\.0\.1 said: 550 5\.7\.1 Refused by policy$/);
    assert.equal((await getDelivery(rig.db.kysely, dsnDelivery.id))?.status, 'failed');
    const dsnsAfter = await rig.db.kysely.selectFrom('messages').select('id').where('ingress', '=', 'dsn').execute();
    assert.equal(dsnsAfter.length, dsnsBefore.length + 1);
  });

  it('no groups.relay: the DSN is kept and queued, its delivery waits with 4.3.5, then dies with the reason (status error)', async (t) => {
    if (!requirePeer(t, 'aiosmtpd')) return;
    const upstream = await pySmtpSink(['550']);
    t.after(() => upstream.close());
    work(undefined, fastRetry({ schedule: ['50ms'], maxAttempts: 2 }));

    const { dsnId, dsnDelivery } = await refused(upstream.port, 'no-relay');
    const row = await settled(dsnId);
    assert.equal(row.status, 'error');
    assert.match(row.error ?? '', /^gave up after 2 attempts; last error: 4\.3\.5 groups\.relay is not configured: the DSN is kept but cannot be sent$/);
    const attempts = await getAttempts(rig.db.kysely, dsnDelivery.id);
    assert.deepEqual(attempts.map((a) => [a.outcome, a.enhancedStatus]), [
      ['transient', '4.3.5'],
      ['dead', '4.3.5'],
    ]);
    // Still there to replay once a relay is set (postroom deliveries retry ID).
    assert.equal((await getDelivery(rig.db.kysely, dsnDelivery.id))?.status, 'dead');
  });
});

async function readAll(src: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of src) chunks.push(c);
  return Buffer.concat(chunks);
}
