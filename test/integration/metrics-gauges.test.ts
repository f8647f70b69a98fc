import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { PlannedDelivery } from '../../src/core/delivery.js';
import { queueGauges } from '../../src/store/health.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { deliveryRig, type DeliveryRig } from '../helpers/delivery.js';
import { startTestPostroom } from '../helpers/postroom.js';

const plan = (route: string, rcpt: string): PlannedDelivery => ({ route, targetIndex: 0, kind: 'plan-only', params: {}, recipients: [rcpt], captures: {} });

/** The value of one sample line of a Prometheus text exposition. */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('queue gauges, read from the store on each scrape', () => {
  let rig: DeliveryRig;
  before(async () => {
    rig = await deliveryRig();
  });
  after(() => rig?.cleanup());

  test('are zero on an empty store', async () => {
    assert.deepEqual(await queueGauges(rig.db), { deliveries: { pending: 0, failed: 0, dead: 0 }, oldestPendingSeconds: 0, parseBacklog: 0 });
  });

  test('count deliveries by status, dead letters, the oldest pending age and unparsed messages', async () => {
    const parsed = await rig.keep('Subject: a\r\n\r\nbody\r\n');
    await rig.keep('Subject: b\r\n\r\nbody\r\n', {}, { parse: false });
    await rig.keep('Subject: c\r\n\r\nbody\r\n', {}, { parse: false });
    const ids = await rig.queue.enqueue(parsed.id, ['a', 'b', 'c', 'd', 'e', 'f'].map((x) => plan(`route-${x}`, `${x}@postroom.test`)));
    const set = (id: string, v: Record<string, string>) => rig.db.kysely.updateTable('deliveries').set(v).where('id', '=', id).execute();
    await set(ids[0]!, { status: 'dead' });
    await set(ids[1]!, { status: 'dead' });
    await set(ids[2]!, { status: 'failed' });
    await set(ids[3]!, { status: 'done' });
    const now = new Date();
    // The oldest pending is an hour old; a done one older still must not count.
    await set(ids[4]!, { created_at: new Date(now.getTime() - 3_600_000).toISOString() });
    await set(ids[3]!, { created_at: new Date(now.getTime() - 7_200_000).toISOString() });
    const g = await queueGauges(rig.db, now);
    assert.deepEqual(g.deliveries, { pending: 2, failed: 1, dead: 2 });
    assert.equal(g.oldestPendingSeconds, 3600);
    assert.equal(g.parseBacklog, 2);

    const metrics = createMetrics();
    metrics.readQueueWith(() => queueGauges(rig.db, now));
    const text = await metrics.registry.metrics();
    assert.equal(sample(text, 'postroom_delivery_queue{status="pending"}'), 2);
    assert.equal(sample(text, 'postroom_delivery_queue{status="failed"}'), 1);
    assert.equal(sample(text, 'postroom_delivery_queue{status="dead"}'), 2);
    assert.equal(sample(text, 'postroom_delivery_queue{status="done"}'), undefined);
    assert.equal(sample(text, 'postroom_dead_letters'), 2);
    assert.equal(sample(text, 'postroom_delivery_oldest_pending_seconds'), 3600);
    assert.equal(sample(text, 'postroom_parse_backlog'), 2);
  });

  test('one scrape reads the store once for all four gauges', async () => {
    const metrics = createMetrics();
    let reads = 0;
    metrics.readQueueWith(async () => {
      reads++;
      return queueGauges(rig.db);
    });
    await metrics.registry.metrics();
    assert.equal(reads, 1);
    await metrics.registry.metrics();
    assert.equal(reads, 2);
  });
});

describe('GET /metrics without the token', () => {
  test('answers on the API listener with http.metrics.public: true, the queue gauges included', async (t) => {
    const pr = await startTestPostroom({ http: { metrics: { public: true } } });
    t.after(() => pr.close());
    const res = await fetch(`${pr.baseUrl}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.equal(sample(text, 'postroom_parse_backlog'), 0);
    assert.equal(sample(text, 'postroom_dead_letters'), 0);
    // The rest of the API still needs the token.
    assert.equal((await fetch(`${pr.baseUrl}/api/v1/messages`)).status, 401);
  });

  test('answers on a listener of its own with http.metrics.listen, which serves nothing else', async (t) => {
    const pr = await startTestPostroom({ http: { metrics: { listen: '127.0.0.1:0' } } });
    t.after(() => pr.close());
    const port = pr.addresses.metrics!.port;
    assert.notEqual(port, pr.httpPort);
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    assert.equal(sample(await res.text(), 'postroom_delivery_queue{status="pending"}'), 0);
    for (const p of ['/api/v1/messages', '/readyz', '/']) {
      const other = await fetch(`http://127.0.0.1:${port}${p}`);
      assert.equal(other.status, 404, p);
      assert.equal(((await other.json()) as { code: string }).code, 'NOT_FOUND', p);
    }
    assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status, 405);
    // On the API listener /metrics still needs the token.
    assert.equal((await fetch(`${pr.baseUrl}/metrics`)).status, 401);
    const ready = (await (await fetch(`${pr.baseUrl}/readyz`)).json()) as { checks: { listeners: string } };
    assert.equal(ready.checks.listeners, 'ok');
    await pr.metricsServer!.close();
    const down = (await (await fetch(`${pr.baseUrl}/readyz`)).json()) as { checks: { listeners: string } };
    assert.equal(down.checks.listeners, 'metrics is not listening');
  });
});
