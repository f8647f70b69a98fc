import { transact, type Db } from './db.js';
import { matchDeliveries, refreshMessageStatus, type DeliveryMatch } from './deliveries.js';

/** What a bulk replay may pick: settled deliveries (a pending one is already queued). */
// held: quarantined deliveries (a route's authFailure); replaying them releases them.
export const REPLAYABLE = ['dead', 'failed', 'done', 'held'] as const;
export type ReplayableStatus = (typeof REPLAYABLE)[number];

/** Which deliveries a bulk replay takes: a DeliveryMatch whose status is a settled one. */
export interface ReplayFilter extends DeliveryMatch {
  status: ReplayableStatus;
}

export interface ReplayOptions {
  /** At most this many are replayed (in id order); the rest stay as they are. */
  cap: number;
  /** Due times are staggered so the queue hands the target at most this many a second. */
  perSecond: number;
  dryRun?: boolean;
  now?: Date;
}

export interface ReplayResult {
  matched: number;
  /** How many the cap lets through: what a dry run would replay. */
  selected: number;
  /** How many were made pending (fewer than selected when some changed meanwhile; 0 in a dry run). */
  replayed: number;
  perSecond: number;
  /** Due time of the first and the last replayed delivery; null when none was replayed. */
  firstDueAt: string | null;
  lastDueAt: string | null;
}

/** Rows per transaction: keeps each one short, so workers finishing deliveries are not held up. */
const CHUNK = 200;

/**
 * Replay every delivery matching a filter, server-side: each is made pending again with a fresh
 * attempt budget (as a replay of one), but due at `now + i / perSecond` seconds, so a replay of
 * 10,000 dead letters reaches their target at the pace asked for instead of all at once (the
 * flood that killed them is the usual reason they died). The worker needs no pacing of its own:
 * it leases what is due. Rows that changed status since they were counted are left alone.
 */
export async function replayMatching(db: Db, filter: ReplayFilter, opts: ReplayOptions): Promise<ReplayResult> {
  const now = opts.now ?? new Date();
  const base = matchDeliveries(db.kysely.selectFrom('deliveries'), filter);
  const counted = await base.select((eb) => eb.fn.countAll<string | number>().as('n')).executeTakeFirstOrThrow();
  const matched = Number(counted.n);
  const selected = Math.min(matched, opts.cap);
  if (opts.dryRun || selected === 0) return { matched, selected, replayed: 0, perSecond: opts.perSecond, ...dueRange(now, selected, opts.perSecond) };
  const ids = (await base.select('id').orderBy('id').limit(opts.cap).execute()).map((r) => r.id);
  let replayed = 0;
  for (let start = 0; start < ids.length; start += CHUNK) {
    const chunk = ids.slice(start, start + CHUNK);
    replayed += await transact(db, async (trx) => {
      const rows = await trx.selectFrom('deliveries').select(['id', 'message']).where('id', 'in', chunk).where('status', '=', filter.status).execute();
      if (!rows.length) return 0;
      const messages = [...new Set(rows.map((r) => r.message))].sort();
      // The same order as a replay of one: the message rows first (PostgreSQL), then the deliveries.
      if (db.dialect === 'postgres') await trx.selectFrom('messages').select('id').where('id', 'in', messages).orderBy('id').forUpdate().execute();
      const live = new Set(rows.map((r) => r.id));
      // Due times by position in the whole replay: one UPDATE per second's worth of rows.
      const bySecond = new Map<number, string[]>();
      chunk.forEach((id, i) => {
        if (!live.has(id)) return;
        const second = Math.floor((start + i) / opts.perSecond);
        bySecond.set(second, [...(bySecond.get(second) ?? []), id]);
      });
      for (const [second, group] of bySecond) {
        const due = new Date(now.getTime() + second * 1000).toISOString();
        await trx
          .updateTable('deliveries')
          .set({ status: 'pending', attempts: 0, first_attempt_at: null, next_attempt_at: due, lease_owner: null, lease_until: null, updated_at: now.toISOString() })
          .where('id', 'in', group)
          .execute();
      }
      // Recipients not yet delivered are tried again; those done get no second copy.
      await trx.deleteFrom('delivery_recipients').where('delivery', 'in', [...live]).where('status', '!=', 'done').execute();
      for (const m of messages) await refreshMessageStatus(trx, db.dialect, m);
      return live.size;
    });
  }
  return { matched, selected, replayed, perSecond: opts.perSecond, ...dueRange(now, ids.length, opts.perSecond) };
}

function dueRange(now: Date, n: number, perSecond: number): Pick<ReplayResult, 'firstDueAt' | 'lastDueAt'> {
  if (n === 0) return { firstDueAt: null, lastDueAt: null };
  return { firstDueAt: now.toISOString(), lastDueAt: new Date(now.getTime() + Math.floor((n - 1) / perSecond) * 1000).toISOString() };
}
