import { sql } from 'kysely';
import { transact, type Db } from './db.js';

/**
 * Prove the store takes writes: rewrite this node's row in `health_probes` in a durable
 * transaction (committed and, on SQLite, the WAL synced). A read-only database, a file system
 * remounted read-only, a full disk or a PostgreSQL standby fail here, while `select 1` passes.
 */
export async function probeWrite(db: Db, node: string, now = new Date()): Promise<void> {
  const probed_at = now.toISOString();
  await transact(db, (trx) =>
    trx
      .insertInto('health_probes')
      .values({ node, probed_at })
      .onConflict((oc) => oc.column('node').doUpdateSet({ probed_at }))
      .execute(),
  );
}

/** What the queue gauges show, read on each scrape. */
export interface QueueGauges {
  /** Deliveries by status, done left out (it only grows; the attempt counters count it). */
  deliveries: { pending: number; failed: number; dead: number };
  /** Age in seconds of the oldest pending delivery (waiting or between retries); 0 with none. */
  oldestPendingSeconds: number;
  /** Kept messages not parsed yet. */
  parseBacklog: number;
}

/** Delivery statuses a gauge counts: each read as a range of the (status, …) index. */
const COUNTED = ['pending', 'failed', 'dead'] as const;

/**
 * The queue gauges in three indexed reads: counts by status through `deliveries_due_target`
 * (status first), the oldest pending row through the partial `deliveries_pending_age`, the
 * parse backlog through `messages_parse_status`. None reads rows of delivered mail.
 */
export async function queueGauges(db: Db, now = new Date()): Promise<QueueGauges> {
  const q = db.kysely;
  const [byStatus, oldest, backlog] = await Promise.all([
    q
      .selectFrom('deliveries')
      .select((eb) => ['status', eb.fn.countAll<string | number>().as('n')])
      .where('status', 'in', COUNTED)
      .groupBy('status')
      .execute(),
    oldestPending(db),
    q
      .selectFrom('messages')
      .select((eb) => eb.fn.countAll<string | number>().as('n'))
      .where('parse_status', '=', 'pending')
      .executeTakeFirst(),
  ]);
  const deliveries = { pending: 0, failed: 0, dead: 0 };
  for (const r of byStatus) deliveries[r.status as (typeof COUNTED)[number]] = Number(r.n);
  const at = oldest ? new Date(oldest).getTime() : NaN;
  return {
    deliveries,
    oldestPendingSeconds: Number.isNaN(at) ? 0 : Math.max(0, (now.getTime() - at) / 1000),
    parseBacklog: Number(backlog?.n ?? 0),
  };
}

/**
 * created_at of the oldest pending delivery, through the partial index `deliveries_pending_age`.
 * The condition is a literal, not a bound parameter: a planner uses a partial index only when
 * the query's WHERE implies the index's, which a `?` cannot. SQLite is told the index by name:
 * without statistics it prefers `deliveries_due_target` (status first) and would read every
 * pending row; INDEXED BY makes the query fail rather than quietly scan.
 */
async function oldestPending(db: Db): Promise<string | null> {
  const r =
    db.dialect === 'sqlite'
      ? await sql<{ at: string | null }>`select min(created_at) as at from deliveries indexed by deliveries_pending_age where status = 'pending'`.execute(db.kysely)
      : await sql<{ at: string | null }>`select min(created_at) as at from deliveries where status = 'pending'`.execute(db.kysely);
  return r.rows[0]?.at ?? null;
}
