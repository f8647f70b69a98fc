import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { z } from 'zod';
import type { DeliveryContext, PlannedDelivery, Target } from '../../src/core/delivery.js';
import { mailError } from '../../src/core/errors.js';
import {
  deliveryId,
  finishAttempt,
  getAttempts,
  getDelivery,
  leaseDue,
  leaseForAttempts,
  listDeliveries,
  retryDelivery,
  startAttempt,
} from '../../src/store/deliveries.js';
import { waitFor } from '../helpers/env.js';
import { deliveryRig, fastRetry, messageStatus, type DeliveryRig } from '../helpers/delivery.js';

const RAW = 'From: a@example.org\r\nTo: hook@postroom.test\r\nSubject: test\r\n\r\nhello\r\n';

/** A target whose attempts follow a script: 'ok', 'transient', 'permanent', 'hang', or a MailError. */
function scripted(kind: string, script: (n: number, ctx: DeliveryContext) => 'ok' | 'transient' | 'permanent' | 'hang' | Error) {
  const calls: DeliveryContext[] = [];
  const target: Target<{ tag?: string }> = {
    kind,
    params: z.strictObject({ tag: z.string().optional() }),
    async deliver(_msg, _p, ctx) {
      calls.push(ctx);
      const step = script(calls.length, ctx);
      if (step === 'ok') return { summary: `ok ${calls.length}` };
      if (step === 'transient') throw mailError('TARGET_TEMPFAIL', `try ${calls.length} failed`);
      if (step === 'permanent') throw mailError('TARGET_REJECTED', 'no such mailbox there');
      if (step === 'hang') {
        await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      }
      throw step;
    },
  };
  return { target, calls };
}

function plan(route: string, kind: string, rcpt = 'hook@postroom.test', targetIndex = 0): PlannedDelivery {
  return { route, targetIndex, kind, params: { tag: route }, recipients: [rcpt], captures: { local: 'hook' } };
}

/** A promise and the function that resolves it. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

describe('delivery queue', () => {
  let rig: DeliveryRig;
  before(async () => {
    rig = await deliveryRig();
  });
  // A test that fails half-way must not leave its worker leasing the next tests' deliveries.
  afterEach(() => rig.stopWorkers());
  after(async () => {
    await rig.cleanup();
  });

  it('stores a plan once: the same message reaching the same route twice is one delivery', async () => {
    const m = await rig.keep(RAW);
    const first = await rig.queue.enqueue(m.id, [plan('r1', 'plan-only', 'a@postroom.test'), plan('r1', 'plan-only', 'b@postroom.test')]);
    assert.equal(first.length, 1, 'two recipients mapping to one route and target: one delivery');
    const again = await rig.queue.enqueue(m.id, [plan('r1', 'plan-only', 'a@postroom.test')]);
    assert.deepEqual(again, [], 'planning again inserts nothing');
    const rows = await listDeliveries(rig.db.kysely, { message: m.id, limit: 10 });
    assert.equal(rows.length, 1);
    assert.equal(rows[0].id, deliveryId(m.id, 'r1', 0));
    assert.deepEqual(rows[0].recipients.sort(), ['a@postroom.test', 'b@postroom.test']);
    assert.equal(rows[0].status, 'pending');
    assert.equal(await messageStatus(rig.db, m.id), 'routed');
  });

  it('leases each due delivery to one worker only, and an expired lease is taken again', async () => {
    const m = await rig.keep(RAW);
    await rig.queue.enqueue(m.id, [plan('lease-a', 'lease-only'), plan('lease-b', 'lease-only')]);
    const mine = <T extends { messageId: string }>(rows: T[]) => rows.filter((r) => r.messageId === m.id);
    const a = mine(await leaseDue(rig.db, { owner: 'A', leaseMs: 200, limit: 1 }));
    const b = mine(await leaseDue(rig.db, { owner: 'B', leaseMs: 200, limit: 10 }));
    assert.equal(a.length + b.length, 2);
    assert.equal(new Set([...a, ...b].map((r) => r.id)).size, 2, 'no delivery leased twice');
    const c = mine(await leaseDue(rig.db, { owner: 'C', leaseMs: 200, limit: 10 }));
    assert.deepEqual(c, [], 'leased rows are not handed out while the lease holds');

    // A and B "die": their leases run out and C takes both, each attempt counted.
    await new Promise((r) => setTimeout(r, 250));
    const retaken = mine(await leaseDue(rig.db, { owner: 'C', leaseMs: 5_000, limit: 10 }));
    assert.equal(retaken.length, 2);
    for (const d of retaken) {
      assert.equal(d.leaseOwner, 'C');
      assert.equal(d.attempts, 2, 'the dead worker’s attempt counts');
    }
    // The dead worker wakes up late: its result must not overwrite C's lease.
    const late = retaken[0];
    const attemptId = await startAttempt(rig.db.kysely, late.id, 1);
    const kept = await finishAttempt(rig.db, { id: late.id, messageId: m.id, owner: 'A', attemptId }, { outcome: 'done' });
    assert.equal(kept, false);
    assert.equal((await getDelivery(rig.db.kysely, late.id))?.status, 'pending');
    for (const d of retaken) {
      const aid = await startAttempt(rig.db.kysely, d.id, d.attempts);
      assert.equal(await finishAttempt(rig.db, { id: d.id, messageId: m.id, owner: 'C', attemptId: aid }, { outcome: 'done', receipt: { summary: 'by C' } }), true);
    }
    assert.equal(await messageStatus(rig.db, m.id), 'delivered');
  });

  it('a worker killed mid-delivery leaves a lease that expires; another worker delivers', async () => {
    const m = await rig.keep(RAW);
    const { target, calls } = scripted('killable', () => 'ok');
    await rig.queue.enqueue(m.id, [plan('killed', 'killable')]);
    // The "killed" worker leased it and never came back.
    const [d] = (await leaseDue(rig.db, { owner: 'dead-node', leaseMs: 300, limit: 50 })).filter((r) => r.messageId === m.id);
    assert.ok(d);
    await startAttempt(rig.db.kysely, d.id, d.attempts);
    const w = rig.worker(new Map([['killable', target]]));
    w.start();
    const done = await waitFor(async () => {
      const r = await getDelivery(rig.db.kysely, d.id);
      return r?.status === 'done' ? r : undefined;
    }, 'the retaken delivery to be done');
    assert.equal(calls.length, 1);
    assert.equal(done.attempts, 2);
    assert.equal(done.receipt?.summary, 'ok 1');
    const attempts = await getAttempts(rig.db.kysely, d.id);
    assert.deepEqual(attempts.map((a) => a.outcome), [null, 'done'], 'the lost attempt stays visible, unfinished');
    assert.equal(await messageStatus(rig.db, m.id), 'delivered');
    await w.stop();
  });

  it('retries transient failures on the route’s schedule, same delivery id every time', async () => {
    const m = await rig.keep(RAW);
    const { target, calls } = scripted('flaky', (n) => (n < 3 ? 'transient' : 'ok'));
    const w = rig.worker(new Map([['flaky', target]]), { retry: fastRetry({ schedule: ['80ms'] }) });
    w.start();
    const [id] = await rig.queue.enqueue(m.id, [plan('flaky', 'flaky')]);
    await waitFor(async () => (await getDelivery(rig.db.kysely, id))?.status === 'done', 'flaky delivery done');
    assert.deepEqual(calls.map((c) => c.attempt), [1, 2, 3]);
    assert.ok(calls.every((c) => c.deliveryId === id));
    assert.deepEqual(calls[0].captures, { local: 'hook' });
    const attempts = await getAttempts(rig.db.kysely, id);
    assert.deepEqual(attempts.map((a) => a.outcome), ['transient', 'transient', 'done']);
    assert.equal(attempts[0].enhancedStatus, '4.4.1');
    for (let i = 1; i < attempts.length; i++) {
      const gap = Date.parse(attempts[i].startedAt) - Date.parse(attempts[i - 1].finishedAt!);
      assert.ok(gap >= 70, `attempt ${i + 1} waited for the backoff (${gap} ms)`);
    }
    assert.equal(await messageStatus(rig.db, m.id), 'delivered');
    await w.stop();
  });

  it('a permanent failure is failed at once, and so is the message', async () => {
    const m = await rig.keep(RAW);
    const { target, calls } = scripted('hard', () => 'permanent');
    const w = rig.worker(new Map([['hard', target]]));
    w.start();
    const [id] = await rig.queue.enqueue(m.id, [plan('hard', 'hard')]);
    const d = await waitFor(async () => {
      const r = await getDelivery(rig.db.kysely, id);
      return r?.status === 'failed' ? r : undefined;
    }, 'failed');
    assert.equal(calls.length, 1);
    assert.match(d.lastError ?? '', /^5\.0\.0 no such mailbox there/);
    assert.equal(await messageStatus(rig.db, m.id), 'failed');
    await w.stop();
  });

  it('is dead after maxAttempts, with the reason', async () => {
    const m = await rig.keep(RAW);
    const { target, calls } = scripted('down', () => 'transient');
    const w = rig.worker(new Map([['down', target]]), { retry: fastRetry({ schedule: ['20ms'], maxAttempts: 3 }) });
    w.start();
    const [id] = await rig.queue.enqueue(m.id, [plan('down', 'down')]);
    const d = await waitFor(async () => {
      const r = await getDelivery(rig.db.kysely, id);
      return r?.status === 'dead' ? r : undefined;
    }, 'dead');
    assert.equal(calls.length, 3);
    assert.match(d.lastError ?? '', /gave up after 3 attempts; last error: 4\.4\.1 try 3 failed/);
    assert.equal(await messageStatus(rig.db, m.id), 'failed');
    await w.stop();
  });

  it('is dead when the next retry would pass maxAge', async () => {
    const m = await rig.keep(RAW);
    const { target, calls } = scripted('slowdown', () => 'transient');
    const w = rig.worker(new Map([['slowdown', target]]), { retry: fastRetry({ schedule: ['100ms'], maxAge: '250ms', maxAttempts: 50 }) });
    w.start();
    const [id] = await rig.queue.enqueue(m.id, [plan('aged', 'slowdown')]);
    const d = await waitFor(async () => {
      const r = await getDelivery(rig.db.kysely, id);
      return r?.status === 'dead' ? r : undefined;
    }, 'dead by age');
    assert.ok(calls.length >= 2 && calls.length <= 3, `${calls.length} attempts within 250 ms at 100 ms apart`);
    assert.match(d.lastError ?? '', /maxAge 250 ms/);
    await w.stop();
  });

  it('a delivery that keeps killing its worker still ends dead after maxAttempts', async () => {
    const m = await rig.keep(RAW);
    await rig.queue.enqueue(m.id, [plan('poison', 'poison-kind')]);
    const id = deliveryId(m.id, 'poison', 0);
    for (let i = 0; i < 2; i++) {
      const got = await waitFor(
        async () => (await leaseDue(rig.db, { owner: `crasher-${i}`, leaseMs: 50, limit: 50 })).find((r) => r.id === id),
        'lease',
      );
      assert.equal(got.attempts, i + 1);
    }
    const { target, calls } = scripted('poison-kind', () => 'ok');
    const w = rig.worker(new Map([['poison-kind', target]]), { retry: fastRetry({ maxAttempts: 2 }) });
    await new Promise((r) => setTimeout(r, 60));
    w.start();
    const d = await waitFor(async () => {
      const r = await getDelivery(rig.db.kysely, id);
      return r?.status === 'dead' ? r : undefined;
    }, 'poison dead');
    assert.equal(calls.length, 0, 'not attempted a third time');
    assert.match(d.lastError ?? '', /gave up after 2 attempts/);
    await w.stop();
  });

  it("honours an upstream's Retry-After over a shorter schedule", async () => {
    const m = await rig.keep(RAW);
    const { target } = scripted('busy', (n) =>
      n === 1 ? mailError('TARGET_BUSY', 'slow down', { retryAfter: 0.4 }) : 'ok',
    );
    const w = rig.worker(new Map([['busy', target]]), { retry: fastRetry({ schedule: ['10ms'] }) });
    w.start();
    const [id] = await rig.queue.enqueue(m.id, [plan('busy', 'busy')]);
    await waitFor(async () => (await getDelivery(rig.db.kysely, id))?.status === 'done', 'done');
    const [first, second] = await getAttempts(rig.db.kysely, id);
    const gap = Date.parse(second.startedAt) - Date.parse(first.finishedAt!);
    assert.ok(gap >= 390, `waited ${gap} ms for Retry-After: 0.4 s`);
    await w.stop();
  });

  it('aborts an attempt past attemptTimeout and retries it', async () => {
    const m = await rig.keep(RAW);
    const { target, calls } = scripted('hangs', (n) => (n === 1 ? 'hang' : 'ok'));
    const w = rig.worker(new Map([['hangs', target]]), { attemptTimeout: 100 });
    w.start();
    const [id] = await rig.queue.enqueue(m.id, [plan('hangs', 'hangs')]);
    await waitFor(async () => (await getDelivery(rig.db.kysely, id))?.status === 'done', 'done after timeout');
    const attempts = await getAttempts(rig.db.kysely, id);
    assert.equal(calls.length, 2);
    assert.equal(attempts[0].outcome, 'transient');
    assert.match(attempts[0].error ?? '', /timed out after 100 ms/);
    await w.stop();
  });

  it('replays a failed delivery by hand with a fresh attempt budget', async () => {
    const m = await rig.keep(RAW);
    let broken = true;
    const { target, calls } = scripted('fixable', () => (broken ? 'permanent' : 'ok'));
    const w = rig.worker(new Map([['fixable', target]]));
    w.start();
    const [id] = await rig.queue.enqueue(m.id, [plan('fixable', 'fixable')]);
    await waitFor(async () => (await getDelivery(rig.db.kysely, id))?.status === 'failed', 'failed');
    assert.equal(await messageStatus(rig.db, m.id), 'failed');
    broken = false;
    // Stopped while we look: a running worker may take the replayed delivery at once.
    await w.stop();
    const r = await retryDelivery(rig.db, id);
    assert.equal(r?.status, 'pending');
    assert.equal(r?.attempts, 0);
    assert.equal(await messageStatus(rig.db, m.id), 'routed');
    w.start();
    await waitFor(async () => (await getDelivery(rig.db.kysely, id))?.status === 'done', 'done after replay');
    assert.equal(calls.length, 2);
    assert.equal((await getAttempts(rig.db.kysely, id)).length, 2, 'history kept');
    assert.equal(await messageStatus(rig.db, m.id), 'delivered');
    assert.equal(await retryDelivery(rig.db, 'dlv_nope'), undefined);
    await w.stop();
  });

  it('an unknown target kind or invalid params fail permanently instead of looping', async () => {
    const m = await rig.keep(RAW);
    const { target } = scripted('strict', () => 'ok');
    const w = rig.worker(new Map([['strict', target]]));
    w.start();
    const [a, b] = await rig.queue.enqueue(m.id, [
      { ...plan('gone', 'no-such-kind') },
      { ...plan('bad-params', 'strict', 'x@postroom.test', 1), params: { tag: 42 } },
    ]);
    await waitFor(async () => (await getDelivery(rig.db.kysely, a))?.status === 'failed', 'unknown kind failed');
    await waitFor(async () => (await getDelivery(rig.db.kysely, b))?.status === 'failed', 'bad params failed');
    // MISCONFIGURED: 5.3.5, permanent; fixing the config and replaying is the way out.
    assert.match((await getDelivery(rig.db.kysely, a))?.lastError ?? '', /^5\.3\.5 no target of kind 'no-such-kind'/);
    assert.match((await getDelivery(rig.db.kysely, b))?.lastError ?? '', /^5\.3\.5 params of strict target invalid/);
    await w.stop();
  });

  it('does not spin on the store while its own attempt runs', async () => {
    const m = await rig.keep(RAW);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: Target<{ tag?: string }> = {
      kind: 'slow-gate',
      params: z.strictObject({ tag: z.string().optional() }),
      async deliver() {
        await gate;
        return { summary: 'released' };
      },
    };
    const w = rig.worker(new Map([['slow-gate', slow]]), { pollInterval: 25 });
    let ticks = 0;
    const tick = (w as unknown as { tick(): Promise<void> }).tick.bind(w);
    (w as unknown as { tick(): Promise<void> }).tick = () => (ticks++, tick());
    w.start();
    const [id] = await rig.queue.enqueue(m.id, [plan('gate', 'slow-gate')]);
    await waitFor(async () => (await getDelivery(rig.db.kysely, id))?.leaseOwner === w.owner, 'leased');
    ticks = 0;
    await new Promise((r) => setTimeout(r, 500));
    // A row being attempted is "due" in the past; counting it as due made the worker re-poll at once, forever.
    assert.ok(ticks <= 40, `${ticks} polls in 500 ms at a 25 ms poll interval`);
    release();
    await waitFor(async () => (await getDelivery(rig.db.kysely, id))?.status === 'done', 'done');
    await w.stop();
  });

  it('fans out across deliveries: the message is delivered only when all are done', async () => {
    const m = await rig.keep(RAW);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: Target<{ tag?: string }> = {
      kind: 'gated',
      params: z.strictObject({ tag: z.string().optional() }),
      async deliver() {
        await gate;
        return { summary: 'late' };
      },
    };
    const { target: fast } = scripted('quick', () => 'ok');
    const w = rig.worker(new Map<string, Target<any>>([['gated', slow], ['quick', fast]]));
    w.start();
    const [x, y] = await rig.queue.enqueue(m.id, [plan('fan', 'quick'), plan('fan', 'gated', 'hook@postroom.test', 1)]);
    await waitFor(async () => (await getDelivery(rig.db.kysely, x))?.status === 'done', 'quick done');
    assert.equal(await messageStatus(rig.db, m.id), 'routed');
    release();
    await waitFor(async () => (await getDelivery(rig.db.kysely, y))?.status === 'done', 'gated done');
    assert.equal(await messageStatus(rig.db, m.id), 'delivered');
    await w.stop();
  });
  it('leasing for attempts records the start of each attempt with the lease', async () => {
    const m = await rig.keep(RAW);
    await rig.queue.enqueue(m.id, [plan('started-a', 'lease-only'), plan('started-b', 'lease-only')]);
    const leased = (await leaseForAttempts(rig.db, { owner: 'S', leaseMs: 5_000, limit: 50 })).filter((d) => d.messageId === m.id);
    assert.equal(leased.length, 2);
    for (const d of leased) {
      const attempts = await getAttempts(rig.db.kysely, d.id);
      assert.deepEqual(
        attempts.map((a) => [a.id, a.n, a.outcome]),
        [[d.attemptId, d.attempts, null]],
      );
      assert.ok(await finishAttempt(rig.db, { id: d.id, messageId: m.id, owner: 'S', attemptId: d.attemptId }, { outcome: 'done' }));
    }
  });

  describe('wake-ups (the poll interval is a minute: only a wake can start these)', () => {
    // Nothing else may be due, or the worker would find these deliveries while leasing those.
    const nothingElseDue = () => rig.db.kysely.updateTable('deliveries').set({ status: 'failed' }).where('status', '=', 'pending').execute();

    it('a wake while the worker decides how long to sleep is not lost', async () => {
      await nothingElseDue();
      const m = await rig.keep(RAW);
      const { target, calls } = scripted('woken', () => 'ok');
      const w = rig.worker(new Map([['woken', target]]), { pollInterval: 60_000 });
      // Hold the worker in schedule() (asking the store when the next delivery is due) while
      // a delivery is enqueued: its wake comes while the worker is not leasing.
      const deciding = gate();
      const hold = gate();
      const inner = w as unknown as { schedule(): Promise<void> };
      const schedule = inner.schedule.bind(w);
      let first = true;
      inner.schedule = async () => {
        await schedule();
        if (!first) return;
        first = false;
        deciding.open();
        await hold.wait;
      };
      w.start();
      await deciding.wait;
      const [id] = await rig.queue.enqueue(m.id, [plan('woken', 'woken')]);
      hold.open();
      await waitFor(async () => (await getDelivery(rig.db.kysely, id))?.status === 'done', 'the delivery enqueued meanwhile to be done');
      assert.equal(calls.length, 1);
      await w.stop();
    });

    it('a delivery enqueued while every slot is busy starts when a slot frees', async () => {
      await nothingElseDue();
      const [a, b] = [await rig.keep(RAW), await rig.keep(RAW)];
      const first = gate();
      const calls: string[] = [];
      const held: Target<{ tag?: string }> = {
        kind: 'one-slot',
        params: z.strictObject({ tag: z.string().optional() }),
        async deliver(msg) {
          calls.push(msg.message.id);
          if (msg.message.id === a.id) await first.wait;
          return { summary: 'ok' };
        },
      };
      const w = rig.worker(new Map([['one-slot', held]]), { workers: 1, pollInterval: 60_000 });
      w.start();
      const [ida] = await rig.queue.enqueue(a.id, [plan('one-slot', 'one-slot')]);
      await waitFor(() => calls.length === 1, 'the first delivery to hold the only slot');
      const [idb] = await rig.queue.enqueue(b.id, [plan('one-slot', 'one-slot')]);
      assert.deepEqual(calls, [a.id], 'no slot for the second yet');
      first.open();
      await waitFor(async () => (await getDelivery(rig.db.kysely, idb))?.status === 'done', 'the second delivery to be done');
      assert.equal((await getDelivery(rig.db.kysely, ida))?.status, 'done');
      assert.deepEqual(calls, [a.id, b.id]);
      await w.stop();
    });

    it('never runs more targets at once than workers; idle() means every outcome is recorded', async () => {
      await nothingElseDue();
      let running = 0;
      let most = 0;
      const counted: Target<{ tag?: string }> = {
        kind: 'counted',
        params: z.strictObject({ tag: z.string().optional() }),
        async deliver() {
          most = Math.max(most, ++running);
          await new Promise((r) => setImmediate(r));
          running--;
          return { summary: 'ok' };
        },
      };
      const w = rig.worker(new Map([['counted', counted]]), { workers: 2, pollInterval: 60_000 });
      w.start();
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const m = await rig.keep(RAW);
        ids.push(...(await rig.queue.enqueue(m.id, [plan('counted', 'counted'), plan('counted', 'counted', 'hook@postroom.test', 1)])));
      }
      await waitFor(async () => (await Promise.all(ids.map((id) => getDelivery(rig.db.kysely, id)))).every((d) => d?.attempts), 'every delivery attempted');
      await w.idle();
      const done = await Promise.all(ids.map(async (id) => (await getDelivery(rig.db.kysely, id))?.status));
      assert.deepEqual(done, ids.map(() => 'done'), 'idle: every attempt finished and recorded');
      assert.ok(most <= 2, `${most} targets ran at once with 2 workers`);
      await w.stop();
    });
  });
});
