import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { PlannedDelivery } from '../../src/core/delivery.js';
import { getAttempts, getDelivery, type DeliveryRecord } from '../../src/store/deliveries.js';
import { forwardParams, forwardTarget } from '../../src/targets/forward.js';
import { deliveryRig, fastRetry, messageStatus, type DeliveryRig } from '../helpers/delivery.js';
import { freePort, requirePeer, tempDir, waitFor } from '../helpers/env.js';
import { pySmtpSink } from '../helpers/py-smtp-sink.js';

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
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        import('node:net').then(({ default: net }) => {
          const s = net.connect(port, '127.0.0.1', () => {
            s.destroy();
            resolve(true);
          });
          s.on('error', () => resolve(false));
        });
      }),
    'smtp-sink listening',
  );
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

describe('forward target against real SMTP sinks', () => {
  let rig: DeliveryRig;
  before(async () => {
    rig = await deliveryRig();
    rig.worker(new Map([['forward', forwardTarget]]), { retry: fastRetry({ schedule: ['100ms'] }) }).start();
  });
  after(async () => {
    await rig.cleanup();
  });

  async function forward(
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
    const [id] = await rig.queue.enqueue(m.id, [p]);
    const d = await waitFor(async () => {
      const r = await getDelivery(rig.db.kysely, id);
      return r && until(r) ? r : undefined;
    }, `delivery ${route}`);
    return { m, d, attempts: await getAttempts(rig.db.kysely, id) };
  }

  it('relays to Postfix smtp-sink: envelope kept, lines starting with a dot survive', async (t) => {
    if (!requirePeer(t, 'smtp-sink', 'postfix')) return;
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
    if (!requirePeer(t, '/usr/bin/python3', 'python3-aiosmtpd')) return;
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
    if (!requirePeer(t, '/usr/bin/python3', 'python3-aiosmtpd')) return;
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

  it('a sink that says 5xx after the dot: failed at once, and a DSN to the sender is kept', async (t) => {
    if (!requirePeer(t, 'smtp-sink', 'postfix')) return;
    const sink = await smtpSink(['-f', '.']);
    try {
      const { m, d, attempts } = await forward('hard', { host: '127.0.0.1', port: sink.port }, (r) => r.status !== 'pending');
      assert.equal(d.status, 'failed');
      assert.equal(attempts.length, 1);
      assert.match(d.lastError ?? '', /^5\.3\.0 127\.0\.0\.1 said: 500 5\.3\.0 Error: command failed \(DSN (\S+) kept for <sender@example\.org>\)/);
      assert.equal(await messageStatus(rig.db, m.id), 'failed');

      const dsnId = /\(DSN (\S+) kept/.exec(d.lastError ?? '')![1];
      const dsn = await rig.db.kysely.selectFrom('messages').selectAll().where('id', '=', dsnId).executeTakeFirstOrThrow();
      assert.equal(dsn.mail_from, '', 'a DSN is sent from the null sender');
      assert.deepEqual(JSON.parse(dsn.rcpt_to), ['sender@example.org']);
      assert.equal(dsn.status, 'sending');
      assert.equal(dsn.ingress, 'dsn');
      const text = (await readAll(await rig.blobs.open(dsn.raw_sha256))).toString('utf8');
      assert.match(text, /^Content-Type: multipart\/report; report-type=delivery-status;/m);
      assert.match(text, /^Auto-Submitted: auto-replied\r$/m);
      assert.match(text, /^Content-Type: message\/delivery-status\r\n\r\nReporting-MTA: dns; postroom\.test\r\n/m);
      assert.match(text, /^Final-Recipient: rfc822; upstream@relay\.test\r\nAction: failed\r\nStatus: 5\.3\.0\r\nRemote-MTA: dns; 127\.0\.0\.1\r\nDiagnostic-Code: smtp; 500 5\.3\.0 Error: command failed\r$/m);
      assert.match(text, /^Content-Type: text\/rfc822-headers\r\n\r\nFrom: Jan Novak <jan@example\.org>\r\n[\s\S]*Message-ID: <fwd-1@example\.org>\r\n--/m);
      assert.ok(!text.includes('.leading dot'), 'the body is not sent back');
    } finally {
      await sink.close();
    }
  });

  it('never sends a DSN to the null sender <>', async (t) => {
    if (!requirePeer(t, 'smtp-sink', 'postfix')) return;
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

async function readAll(src: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of src) chunks.push(c);
  return Buffer.concat(chunks);
}
