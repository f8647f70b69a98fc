import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import type { PlannedDelivery } from '../../src/core/delivery.js';
import { newId } from '../../src/core/ids.js';
import { webhookParams, webhookTarget } from '../../src/targets/webhook.js';
import { deliveryRig, fastRetry, type DeliveryRig } from '../helpers/delivery.js';
import { testBackend, waitFor } from '../helpers/env.js';

const RAW = 'From: a@example.org\r\nTo: hook@postroom.test\r\nSubject: stuck\r\nMessage-ID: <stuck@example.org>\r\n\r\nbody\r\n';

/** A TCP server on loopback that accepts connections and never says a word (a hung webhook). */
async function blackhole() {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  let maxOpen = 0;
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    maxOpen = Math.max(maxOpen, sockets.size);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.resume(); // read the request, answer nothing
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    accepted: () => accepted,
    open: () => sockets.size,
    maxOpen: () => maxOpen,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A webhook that answers 204 at once. */
async function healthy() {
  let hits = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hits++;
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    hits: () => hits,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe(`one stuck webhook does not stall the others (${testBackend()})`, () => {
  let rig: DeliveryRig;
  before(async () => {
    rig = await deliveryRig();
  });
  afterEach(async () => {
    await rig.stopWorkers();
    // Each case brings its own servers: the last one's queue must not run against closed ports.
    await rig.db.kysely.deleteFrom('deliveries').execute();
  });
  after(() => rig.cleanup());

  async function queue(route: string, url: string, n: number, timeout = '30s'): Promise<string[]> {
    const ids: string[] = [];
    const params = webhookParams.parse({ url, timeout, allowPrivate: true });
    for (let i = 0; i < n; i++) {
      const m = await rig.keep(RAW);
      const p: PlannedDelivery = { route, targetIndex: 0, kind: 'webhook', params, recipients: ['hook@postroom.test'], captures: {} };
      ids.push(...(await rig.queue.enqueue(m.id, [p])));
    }
    return ids;
  }

  async function statuses(ids: string[]) {
    const rows = await rig.db.kysely.selectFrom('deliveries').select(['status', 'attempts']).where('id', 'in', ids).execute();
    return { done: rows.filter((r) => r.status === 'done').length, attempts: rows.reduce((a, r) => a + r.attempts, 0), rows };
  }

  it("a webhook that accepts TCP and never answers holds only its destination's share of workers", async () => {
    const hole = await blackhole();
    const good = await healthy();
    try {
      // 8 workers, so at most 2 per destination by default; the blackhole's 30 s timeout (and the
      // worker's longer attempt timeout) means none of its attempts ends during this test.
      const w = rig.worker(new Map([['webhook', webhookTarget]]), { workers: 8, attemptTimeout: 120_000, retry: fastRetry() });
      const stuck = await queue('stuck', hole.url, 40);
      w.start();
      await waitFor(() => hole.open() >= 2, 'the blackhole to hold its connections');
      const fine = await queue('fine', good.url, 30);
      // Before per-destination limits every worker sat on the blackhole and these waited 30 s
      // for the first timeouts; the bound is generous, the normal time is well under a second.
      await waitFor(async () => (await statuses(fine)).done === 30, 'the healthy route to be delivered while the other hangs', 20_000);
      assert.equal(good.hits(), 30);
      const s = await statuses(stuck);
      assert.equal(s.done, 0);
      assert.equal(s.attempts, 2, 'only the destination limit of blackhole deliveries was attempted');
      assert.equal(hole.maxOpen(), 2, 'never more than perDestination (workers / 4) connections to the blackhole');
    } finally {
      await rig.stopWorkers();
      await hole.close();
      await good.close();
    }
  });

  it('a destination failing K times in a row is paused: its queue spends no attempts while others deliver', async () => {
    const hole = await blackhole();
    const good = await healthy();
    try {
      // Timeouts of 200 ms: the blackhole fails fast, and after 3 in a row it is paused for a minute.
      const w = rig.worker(new Map([['webhook', webhookTarget]]), {
        workers: 8,
        perDestination: 2,
        breaker: { failures: 3, pause: 60_000, maxPause: 60_000 },
        retry: fastRetry({ schedule: ['10ms'], maxAttempts: 100 }),
      });
      const stuck = await queue('stuck', hole.url, 20, '200ms');
      w.start();
      const dest = `webhook ${new URL(hole.url).origin}`;
      const state = () => w.destinations.snapshot().find((d) => d.destination === dest);
      await waitFor(() => state()?.paused, 'the blackhole destination to be paused', 20_000);
      // Attempts that were running when it paused end (they time out) and count; none start after.
      await waitFor(() => hole.open() === 0 && state()?.running === 0, 'running attempts to end');
      const atPause = (await statuses(stuck)).attempts;
      assert.ok(atPause >= 3 && atPause <= 4, `attempts when paused: ${atPause} (3 failures, and at most one more in flight)`);
      // The healthy route delivers meanwhile: the worker keeps leasing, and skips the paused queue.
      const fine = await queue('fine', good.url, 20);
      await waitFor(async () => (await statuses(fine)).done === 20, 'the healthy route during the pause', 20_000);
      const after = await statuses(stuck);
      assert.equal(after.attempts, atPause, 'no attempt spent on a paused destination');
      assert.equal(hole.accepted(), atPause);
      assert.ok(after.rows.filter((r) => r.attempts === 0).length >= 16, 'most of its queue was never attempted');
      assert.equal(state()?.paused, true);
    } finally {
      await rig.stopWorkers();
      await hole.close();
      await good.close();
    }
  });
  it('behind a held-back backlog, a due delivery the lease seeks past is still found within the poll interval', async () => {
    const hole = await blackhole();
    const good = await healthy();
    try {
      // The lease seeks past the blackhole's 40 due rows while its destination is full; a full
      // scan each poll interval finds what a seek cannot know of, such as a lease that ran out
      // on another node for a delivery dated before the seek point.
      const w = rig.worker(new Map([['webhook', webhookTarget]]), { workers: 8, pollInterval: 1_500, attemptTimeout: 120_000, retry: fastRetry() });
      await queue('stuck', hole.url, 40);
      w.start();
      await waitFor(() => hole.open() >= 2, 'the blackhole to hold its connections');
      const [first] = await queue('fine', good.url, 1);
      await waitFor(async () => (await statuses([first])).done === 1, 'a healthy delivery while the blackhole is full');
      const row = await rig.db.kysely.selectFrom('deliveries').selectAll().where('id', '=', first).executeTakeFirstOrThrow();
      const past = new Date(Date.now() - 60_000).toISOString();
      const other = newId();
      await rig.db.kysely
        .insertInto('deliveries')
        .values({
          ...row,
          id: other,
          status: 'pending',
          attempts: 1,
          receipt: null,
          next_attempt_at: past,
          lease_owner: 'another-node',
          lease_until: new Date(Date.now() + 200).toISOString(),
        })
        .execute();
      const t0 = Date.now();
      await waitFor(async () => (await statuses([other])).done === 1, 'the delivery whose lease ran out', 10_000);
      assert.ok(Date.now() - t0 < 5_000, `found within the poll interval and a little (${Date.now() - t0} ms)`);
      assert.equal(good.hits(), 2);
    } finally {
      await rig.stopWorkers();
      await hole.close();
      await good.close();
    }
  });
});
