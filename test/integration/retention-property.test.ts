import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { setPinned } from '../../src/store/messages.js';
import type { RetentionLimits } from '../../src/store/retention.js';
import { testBackend } from '../helpers/env.js';
import { rig } from '../helpers/retention.js';

const HOUR = 3_600_000;
const ROUTES = ['a', 'b', 'c'] as const;
const STATUSES = ['done', 'failed', 'dead', 'pending'] as const;

interface Msg {
  /** Whole hours: limits are set at half hours, so no message sits on a limit. */
  ageH: number;
  routes: Partial<Record<(typeof ROUTES)[number], (typeof STATUSES)[number]>>;
  pinned: boolean;
  size: number;
}

const limits = fc.record(
  {
    maxAge: fc.option(fc.constantFrom(0, 1.5 * HOUR, 4.5 * HOUR, 8.5 * HOUR), { nil: undefined }),
    maxMessages: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
    maxBytes: fc.option(fc.integer({ min: 0, max: 4000 }), { nil: undefined }),
  },
  { requiredKeys: [] },
);

const on = (n: number | undefined): n is number => typeof n === 'number' && n > 0;

/**
 * What docs/retention.md says goes, computed in memory: finished and unpinned, and in every set
 * of messages it belongs to (a route with its own retention, or the rest under the defaults)
 * past that set's age, count or byte limit, counted newest first.
 */
function expected(msgs: (Msg & { id: string; receivedAt: string; bytes: number })[], defaults: RetentionLimits, own: Record<string, RetentionLimits>): Set<string> {
  const ownNames = Object.keys(own);
  const buckets = [
    { limits: defaults, member: (m: Msg) => Object.keys(m.routes).length === 0 || Object.keys(m.routes).some((r) => !ownNames.includes(r)) },
    ...ownNames.map((r) => ({
      limits: { ...defaults, ...Object.fromEntries(Object.entries(own[r]).filter(([, v]) => v !== undefined)) } as RetentionLimits,
      member: (m: Msg) => r in m.routes,
    })),
  ];
  const marked = buckets.map((b) => {
    const members = msgs.filter(b.member).sort((x, y) => (x.receivedAt === y.receivedAt ? (x.id < y.id ? 1 : -1) : x.receivedAt < y.receivedAt ? 1 : -1));
    const out = new Set<string>();
    let cum = 0;
    members.forEach((m, i) => {
      cum += m.bytes;
      const { maxAge, maxMessages, maxBytes } = b.limits;
      if ((on(maxAge) && m.ageH * HOUR > maxAge) || (on(maxMessages) && i + 1 > maxMessages) || (on(maxBytes) && cum > maxBytes)) out.add(m.id);
    });
    return { member: b.member, out };
  });
  return new Set(
    msgs
      .filter((m) => !m.pinned && Object.values(m.routes).every((s) => s !== 'pending'))
      .filter((m) => marked.every((b) => !b.member(m) || b.out.has(m.id)))
      .map((m) => m.id),
  );
}

describe(`retention removes exactly what its rules say (${testBackend()})`, () => {
  let r: Awaited<ReturnType<typeof rig>>;
  before(async () => {
    r = await rig('db');
  });
  after(() => r.db.cleanup());

  it('any messages (ages, sizes, routes and their delivery states, pins) and any limits, default and per route', async () => {
    const msg = fc.record({
      ageH: fc.integer({ min: 1, max: 10 }),
      routes: fc.dictionary(fc.constantFrom(...ROUTES), fc.constantFrom(...STATUSES), { maxKeys: 2 }),
      pinned: fc.boolean(),
      size: fc.integer({ min: 0, max: 900 }),
    });
    const own = fc.dictionary(fc.constantFrom(...ROUTES), limits, { maxKeys: 2 });
    await fc.assert(
      fc.asyncProperty(fc.array(msg, { minLength: 1, maxLength: 10 }), limits, own, fc.integer({ min: 1, max: 4 }), async (msgs, defaults, routes, batchSize) => {
        await r.db.kysely.deleteFrom('messages').execute();
        const kept = [];
        for (const m of msgs) {
          const k = await r.keep({ ageMs: m.ageH * HOUR, routes: m.routes, size: m.size });
          if (m.pinned) await setPinned(r.db.kysely, k.id, true);
          const row = await r.db.kysely.selectFrom('messages').select(['received_at', 'size']).where('id', '=', k.id).executeTakeFirstOrThrow();
          kept.push({ ...m, id: k.id, receivedAt: row.received_at, bytes: Number(row.size) });
        }
        const want = expected(kept, defaults, routes);
        const dry = await r.retention({ defaults, routes }, { batchSize }).purge({ dryRun: true });
        assert.equal(dry.messages, want.size, 'the dry run counts the same');
        const before = await r.ids();
        await r.retention({ defaults, routes }, { batchSize }).purge();
        const after = await r.ids();
        const removed = new Set([...before].filter((id) => !after.has(id)));
        assert.deepEqual([...removed].sort(), [...want].sort());
      }),
      { numRuns: testBackend() === 'postgres' ? 25 : 40 },
    );
  });
});
