import os from 'node:os';
import { relaxedTransaction, type Db } from './db.js';
import { processAlive } from '../core/process-alive.js';

/**
 * A delivery lease owner's id: host, process id and a per-start random part. The random part
 * makes a restarted process (even under the same pid, as in a container) a new owner, so it
 * never mistakes an old lease for its own.
 */
export function leaseOwnerId(random: string, host = os.hostname(), pid = process.pid): string {
  return `${host}:${pid}:${random}`;
}

/**
 * Whether the process named by a lease owner id is surely gone: it ran on this host and its
 * process id is either ours (a previous start of this process: we replaced it) or no longer
 * exists. Anything else (another host, a live pid, an id not in this form) may still be
 * working, and its lease is left to run out.
 */
export function ownerIsDead(owner: string, self: string, host = os.hostname()): boolean {
  if (owner === self) return false;
  const m = /^(.*):(\d+):[^:]+$/.exec(owner);
  if (!m || m[1] !== host) return false;
  const pid = Number(m[2]);
  // Our own pid under an older owner id: a previous start of this process.
  if (pid === process.pid) return true;
  return !processAlive(pid);
}

/**
 * Take back, at start, the delivery leases of processes on this host that died (kill -9, a
 * crash, a power cut): their deliveries are due again at once instead of after the rest of the
 * lease time. A lease whose holder may be alive (another node, a second process on the same
 * store) is not touched. The attempts those processes started stay in the history unfinished
 * (outcome null: the worker died mid-attempt) and keep counting against maxAttempts.
 * Returns the number of deliveries released.
 */
export async function reclaimDeadLeases(db: Db, self: string, now = new Date()): Promise<number> {
  const at = now.toISOString();
  const owners = await db.kysely
    .selectFrom('deliveries')
    .select('lease_owner')
    .distinct()
    .where('status', '=', 'pending')
    .where('lease_owner', 'is not', null)
    .where('lease_until', '>=', at)
    .execute();
  const dead = owners.map((o) => o.lease_owner!).filter((o) => ownerIsDead(o, self));
  if (!dead.length) return 0;
  return relaxedTransaction(db.kysely, async (trx) => {
    const r = await trx
      .updateTable('deliveries')
      .set({ lease_owner: null, lease_until: null, updated_at: at })
      .where('status', '=', 'pending')
      .where('lease_owner', 'in', dead)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  });
}
