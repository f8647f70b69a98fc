import type { Kysely, Transaction } from 'kysely';
import { transact, type Db } from './db.js';
import type { Database, PausedTargetsTable } from './schema.js';

type Q = Kysely<Database> | Transaction<Database>;

/** A paused route target as the API and the CLI show it. */
export interface PausedTarget {
  route: string;
  targetIndex: number;
  kind: string;
  destination: string | null;
  reason: string;
  delivery: string | null;
  pausedAt: string;
  /** Pending deliveries it holds back. */
  pending: number;
}

function toPausedTarget(r: PausedTargetsTable, pending: number): PausedTarget {
  return {
    route: r.route,
    targetIndex: r.target_index,
    kind: r.kind,
    destination: r.destination,
    reason: r.reason,
    delivery: r.delivery,
    pausedAt: r.paused_at,
    pending,
  };
}

/**
 * Pause a route's target: its deliveries stay pending and are not leased (no attempt is spent)
 * until `resumeTarget`. Pausing one already paused keeps the first reason and time.
 */
export async function pauseTarget(
  db: Db,
  t: { route: string; targetIndex: number; kind: string; destination?: string | null; reason: string; delivery?: string | null },
  now = new Date(),
): Promise<void> {
  await transact(db, (trx) =>
    trx
      .insertInto('paused_targets')
      .values({
        route: t.route,
        target_index: t.targetIndex,
        kind: t.kind,
        destination: t.destination ?? null,
        reason: t.reason.slice(0, 1000),
        delivery: t.delivery ?? null,
        paused_at: now.toISOString(),
      })
      .onConflict((oc) => oc.columns(['route', 'target_index']).doNothing())
      .execute(),
  );
}

/** Resume a paused target; false when it was not paused. Its deliveries are due as before. */
export async function resumeTarget(db: Db, route: string, targetIndex: number): Promise<boolean> {
  return transact(db, async (trx) => {
    const r = await trx.deleteFrom('paused_targets').where('route', '=', route).where('target_index', '=', targetIndex).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  });
}

/** Every paused target, with the number of pending deliveries each holds back. */
export async function listPausedTargets(db: Q): Promise<PausedTarget[]> {
  const rows = await db.selectFrom('paused_targets').selectAll().orderBy('route').orderBy('target_index').execute();
  const out: PausedTarget[] = [];
  for (const r of rows) {
    const c = await db
      .selectFrom('deliveries')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('route', '=', r.route)
      .where('target_index', '=', r.target_index)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    out.push(toPausedTarget(r, Number(c?.n ?? 0)));
  }
  return out;
}
