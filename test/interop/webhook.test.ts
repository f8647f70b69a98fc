import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import type { PlannedDelivery } from '../../src/core/delivery.js';
import type { DeliveryWorker } from '../../src/delivery/worker.js';
import { getAttempts, getDelivery, type DeliveryRecord } from '../../src/store/deliveries.js';
import { listPausedTargets, resumeTarget } from '../../src/store/paused-targets.js';
import { webhookParams, webhookTarget } from '../../src/targets/webhook.js';
import { deliveryRig, fastRetry, messageStatus, type DeliveryRig } from '../helpers/delivery.js';
import { waitFor } from '../helpers/env.js';

const SECRET = `whsec_${randomBytes(24).toString('base64')}`;

const RAW = [
  'From: Jan Novak <jan@example.org>',
  'To: orders@postroom.test',
  'Cc: Office <office@example.org>',
  'Subject: Order ID:4711',
  'Message-ID: <wh-1@example.org>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="b1"',
  '',
  '--b1',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Please ship 3 lamps.',
  '--b1',
  'Content-Type: application/pdf; name="order.pdf"',
  'Content-Disposition: attachment; filename="order.pdf"',
  'Content-Transfer-Encoding: base64',
  '',
  Buffer.from('%PDF-1.4 pretend').toString('base64'),
  '--b1--',
  '',
].join('\r\n');

interface Hit {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

/** A local HTTP server whose answer per path is scripted; records every request. */
async function hookServer(answer: (path: string, n: number, res: http.ServerResponse) => void) {
  const hits: Hit[] = [];
  const counts = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const n = (counts.get(path) ?? 0) + 1;
      counts.set(path, n);
      hits.push({ path, headers: req.headers, body: Buffer.concat(chunks), at: Date.now() });
      answer(path, n, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    hits,
    port,
    url: (path: string, host = '127.0.0.1') => `http://${host}:${port}${path}`,
    on: (path: string) => hits.filter((h) => h.path === path),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('webhook target against a local HTTP server', () => {
  let rig: DeliveryRig;
  let srv: Awaited<ReturnType<typeof hookServer>>;
  let worker: DeliveryWorker;
  before(async () => {
    rig = await deliveryRig();
    srv = await hookServer((path, n, res) => {
      if (path === '/flaky' && n <= 3) return res.writeHead(500).end('not yet');
      if (path === '/gone' && n === 1) return res.writeHead(410).end('this hook was deleted');
      if (path === '/busy' && n === 1) return res.writeHead(429, { 'retry-after': '1' }).end();
      if (path === '/unavailable' && n === 1) return res.writeHead(503, { 'retry-after': '1' }).end('down for maintenance');
      if (path === '/unavailable-plain' && n === 1) return res.writeHead(503).end('overloaded');
      if (path === '/moved') return res.writeHead(302, { location: '/elsewhere' }).end();
      if (path === '/hang') return; // never answers
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    // Every path here is one origin (one test server), so one destination: its concurrency limit
    // and breaker, which keep real endpoints apart, would tie these cases together (the hanging
    // one, retried in the background, would pause the rest).
    worker = rig.worker(new Map([['webhook', webhookTarget]]), {
      publicUrl: 'https://postroom.example',
      perDestination: 4,
      breaker: { failures: 1_000, pause: 1_000, maxPause: 1_000 },
    });
    worker.start();
  });
  after(async () => {
    await rig.cleanup();
    await srv.close();
  });

  async function deliver(route: string, params: Record<string, unknown>, until: (d: DeliveryRecord) => boolean) {
    const m = await rig.keep(RAW, { rcptTo: ['orders@postroom.test'] });
    const p: PlannedDelivery = {
      route,
      targetIndex: 0,
      kind: 'webhook',
      // As the router stores them: the output of the target's own schema. The test server is
      // on loopback, so every route but the SSRF ones allows private addresses.
      params: webhookParams.parse({ allowPrivate: true, ...params }),
      recipients: ['orders@postroom.test'],
      captures: { local: 'orders' },
    };
    return rig.deliverOne(m, p, until);
  }

  it('fails 3 times then succeeds: 4 attempts, one webhook-id, signatures verify, backoff visible', async () => {
    const { m, d, attempts } = await deliver(
      'flaky',
      { url: srv.url('/flaky'), secret: SECRET, token: 'hook-token-1' },
      (r) => r.status === 'done',
    );
    const hits = srv.on('/flaky');
    assert.equal(hits.length, 4);
    assert.equal(new Set(hits.map((h) => h.headers['webhook-id'])).size, 1, 'same webhook-id on every attempt');
    assert.equal(hits[0].headers['webhook-id'], d.id);
    const wh = new Webhook(SECRET);
    for (const h of hits) {
      wh.verify(h.body, {
        'webhook-id': String(h.headers['webhook-id']),
        'webhook-timestamp': String(h.headers['webhook-timestamp']),
        'webhook-signature': String(h.headers['webhook-signature']),
      });
      assert.equal(h.headers.authorization, 'Bearer hook-token-1');
      assert.equal(h.headers['content-type'], 'application/json');
    }
    assert.throws(() =>
      wh.verify(Buffer.concat([hits[0].body, Buffer.from(' ')]), {
        'webhook-id': String(hits[0].headers['webhook-id']),
        'webhook-timestamp': String(hits[0].headers['webhook-timestamp']),
        'webhook-signature': String(hits[0].headers['webhook-signature']),
      }),
    );
    assert.deepEqual(attempts.map((a) => a.outcome), ['transient', 'transient', 'transient', 'done']);
    assert.deepEqual(attempts.map((a) => a.n), [1, 2, 3, 4]);
    for (let i = 0; i < 3; i++) {
      assert.match(attempts[i].error ?? '', /^4\.4\.1 HTTP 500: not yet/);
      assert.ok(attempts[i].nextAttemptAt, 'the scheduled retry time is recorded');
      assert.ok(Date.parse(attempts[i + 1].startedAt) >= Date.parse(attempts[i].nextAttemptAt!) - 5);
    }
    assert.equal(d.receipt?.summary, 'HTTP 200');
    assert.equal(await messageStatus(rig.db, m.id), 'delivered');

    const doc = JSON.parse(hits[3].body.toString('utf8'));
    assert.equal(doc.deliveryId, d.id);
    assert.equal(doc.subject, 'Order ID:4711');
    assert.deepEqual(doc.from, [{ name: 'Jan Novak', address: 'jan@example.org' }]);
    assert.deepEqual(doc.cc, [{ name: 'Office', address: 'office@example.org' }]);
    assert.equal(doc.text.trim(), 'Please ship 3 lamps.');
    assert.deepEqual(doc.envelope.recipients, ['orders@postroom.test']);
    assert.equal(doc.envelope.mailFrom, 'sender@example.org');
    assert.deepEqual(doc.captures, { local: 'orders' });
    assert.ok(doc.headers.some(([n, v]: [string, string]) => n === 'Message-ID' && v === '<wh-1@example.org>'));
    assert.equal(doc.attachments.length, 1);
    assert.equal(doc.attachments[0].filename, 'order.pdf');
    assert.equal(Buffer.from(doc.attachments[0].content, 'base64').toString(), '%PDF-1.4 pretend');
    assert.equal(doc.attachments[0].url, `https://postroom.example/api/v1/messages/${m.id}/attachments/${doc.attachments[0].id}`);
  });

  it('410 Gone fails the delivery at once and pauses the route target until it is resumed', async () => {
    const { m, d, attempts } = await deliver('gone', { url: srv.url('/gone') }, (r) => r.status !== 'pending');
    assert.equal(d.status, 'failed');
    assert.equal(srv.on('/gone').length, 1);
    assert.equal(attempts.length, 1);
    assert.match(d.lastError ?? '', /^5\.1\.6 HTTP 410: this hook was deleted \(the route's target is paused until an operator resumes it\)/);
    assert.equal(await messageStatus(rig.db, m.id), 'failed');
    const [paused] = await listPausedTargets(rig.db.kysely);
    assert.deepEqual(
      { route: paused.route, targetIndex: paused.targetIndex, kind: paused.kind, destination: paused.destination, delivery: paused.delivery },
      { route: 'gone', targetIndex: 0, kind: 'webhook', destination: `webhook http://127.0.0.1:${srv.port}`, delivery: d.id },
    );
    assert.match(paused.reason, /HTTP 410/);

    // The next message for that route target waits, unattempted, while another route's goes.
    const held = await rig.keep(RAW, { rcptTo: ['orders@postroom.test'] });
    const [heldId] = await rig.queue.enqueue(held.id, [
      { route: 'gone', targetIndex: 0, kind: 'webhook', params: webhookParams.parse({ allowPrivate: true, url: srv.url('/gone') }), recipients: ['orders@postroom.test'], captures: {} },
    ]);
    await deliver('beside', { url: srv.url('/beside') }, (r) => r.status === 'done');
    const waiting = await getDelivery(rig.db.kysely, heldId);
    assert.equal(waiting?.status, 'pending');
    assert.equal(waiting?.attempts, 0, 'a paused target spends no attempts');
    assert.equal(srv.on('/gone').length, 1);
    assert.equal((await listPausedTargets(rig.db.kysely))[0].pending, 1);

    assert.equal(await resumeTarget(rig.db, 'gone', 0), true);
    worker.wake();
    await waitFor(async () => (await getDelivery(rig.db.kysely, heldId))?.status === 'done', 'the held delivery after resume');
    assert.deepEqual(await listPausedTargets(rig.db.kysely), []);
    assert.equal(await resumeTarget(rig.db, 'gone', 0), false, 'resuming twice says it was not paused');
  });

  it('503 with Retry-After is retried no sooner than asked, like 429; 503 without it follows the schedule', async () => {
    const { d } = await deliver('unavailable', { url: srv.url('/unavailable') }, (r) => r.status === 'done');
    const [first, second] = srv.on('/unavailable');
    assert.ok(second.at - first.at >= 950, `second request ${second.at - first.at} ms after the first`);
    const [a1] = await getAttempts(rig.db.kysely, d.id);
    assert.match(a1.error ?? '', /^4\.4\.5 HTTP 503/);
    const plain = await deliver('unavailable-plain', { url: srv.url('/unavailable-plain') }, (r) => r.status === 'done');
    const [p1] = plain.attempts;
    assert.match(p1.error ?? '', /^4\.4\.1 HTTP 503/);
  });

  it('429 with Retry-After is retried no sooner than asked, though the schedule says 50 ms', async () => {
    const { d } = await deliver('busy', { url: srv.url('/busy') }, (r) => r.status === 'done');
    const [first, second] = srv.on('/busy');
    assert.ok(second.at - first.at >= 950, `second request ${second.at - first.at} ms after the first`);
    const [a1] = await getAttempts(rig.db.kysely, d.id);
    assert.equal(a1.enhancedStatus, '4.4.5');
  });

  it('does not follow redirects', async () => {
    const { d } = await deliver('moved', { url: srv.url('/moved') }, (r) => r.status !== 'pending');
    assert.equal(d.status, 'failed');
    assert.equal(srv.on('/moved').length, 1);
    assert.equal(srv.on('/elsewhere').length, 0, 'the Location was never requested');
    assert.match(d.lastError ?? '', /HTTP 302.*not followed/);
  });

  it('refuses loopback and private addresses unless the route allows them', async () => {
    const literal = await deliver('private-ip', { url: srv.url('/secret', '127.0.0.1'), allowPrivate: false }, (r) => r.status !== 'pending');
    // By name: 'localhost' is resolved at connect time and the loopback answer refused.
    const named = await deliver('private-name', { url: srv.url('/secret', 'localhost'), allowPrivate: false }, (r) => r.status !== 'pending');
    for (const { d } of [literal, named]) {
      assert.equal(d.status, 'failed');
      assert.match(d.lastError ?? '', /^5\.7\.1 Refusing to connect to .*(127\.0\.0\.1|::1).*allowPrivate/);
    }
    assert.equal(srv.on('/secret').length, 0, 'nothing reached the server');
    const allowed = await deliver('private-ok', { url: srv.url('/secret', '127.0.0.1'), allowPrivate: true }, (r) => r.status !== 'pending');
    assert.equal(allowed.d.status, 'done');
  });

  it('a request that gets no answer times out and is retried', async () => {
    const { attempts } = await deliver('hang', { url: srv.url('/hang'), timeout: '200ms' }, (r) => r.attempts >= 2 && r.status === 'pending');
    assert.equal(attempts[0].outcome, 'transient');
    assert.match(attempts[0].error ?? '', /^4\.4\.7 no answer within 200 ms/);
  });

  it('multipart/form-data carries the JSON payload and the attachment as a file', async () => {
    await deliver('multipart', { url: srv.url('/form'), format: 'multipart', secret: SECRET }, (r) => r.status === 'done');
    const [hit] = srv.on('/form');
    const form = await new Request('http://x/', {
      method: 'POST',
      headers: { 'content-type': String(hit.headers['content-type']) },
      body: new Uint8Array(hit.body),
    }).formData();
    const payload = JSON.parse(await (form.get('payload') as Blob).text());
    assert.equal(payload.subject, 'Order ID:4711');
    const field = payload.attachments[0].field as string;
    const file = form.get(field) as File;
    assert.equal(file.name, 'order.pdf');
    assert.equal(await file.text(), '%PDF-1.4 pretend');
    assert.equal(payload.attachments[0].content, undefined);
    new Webhook(SECRET).verify(hit.body, {
      'webhook-id': String(hit.headers['webhook-id']),
      'webhook-timestamp': String(hit.headers['webhook-timestamp']),
      'webhook-signature': String(hit.headers['webhook-signature']),
    }, { jsonParse: false });
  });

  it('raw format sends the message bytes exactly as received', async () => {
    const { m } = await deliver('raw', { url: srv.url('/raw'), format: 'raw', secret: SECRET }, (r) => r.status === 'done');
    const [hit] = srv.on('/raw');
    assert.equal(hit.headers['content-type'], 'message/rfc822');
    assert.ok(hit.body.equals(Buffer.from(RAW)), 'body is the raw message byte for byte');
    assert.deepEqual(JSON.parse(String(hit.headers['x-postroom-envelope'])), {
      mailFrom: 'sender@example.org',
      rcptTo: ['orders@postroom.test'],
      messageId: m.id,
    });
    new Webhook(SECRET).verify(hit.body, {
      'webhook-id': String(hit.headers['webhook-id']),
      'webhook-timestamp': String(hit.headers['webhook-timestamp']),
      'webhook-signature': String(hit.headers['webhook-signature']),
    }, { jsonParse: false });
  });

  it('attachments past the inline limit travel as URLs only', async () => {
    await deliver('big', { url: srv.url('/big'), inlineLimit: 4 }, (r) => r.status === 'done');
    const doc = JSON.parse(srv.on('/big')[0].body.toString('utf8'));
    assert.equal(doc.attachments[0].content, undefined);
    assert.match(doc.attachments[0].url, /^https:\/\/postroom\.example\/api\/v1\/messages\/.+\/attachments\//);
  });
});
