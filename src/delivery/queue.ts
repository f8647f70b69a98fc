import { EventEmitter } from 'node:events';
import type { PlannedDelivery } from '../core/delivery.js';
import type { Db } from '../store/db.js';
import { deliveryId, insertDeliveries, pendingDeliveryRow, refreshMessageStatus } from '../store/deliveries.js';
import type { DeliveriesTable } from '../store/schema.js';
import { batchedWrite } from '../store/write-batch.js';
import { claimDeliveries, duplicateNote, type ClaimingMessage, type DedupPolicy } from './duplicates.js';

/**
 * The durable delivery queue's front door. The router's plan for a message is stored here in
 * one transaction with the message's move to `routed`; the worker (delivery/worker.ts) takes
 * it from there. Planning the same message again (a re-parse after a crash, a retransmission
 * that intake folded into the same message) inserts nothing: ids are derived, duplicates ignored.
 */
export class DeliveryQueue extends EventEmitter<{ enqueued: [string[]] }> {
  constructor(private readonly db: Db) {
    super();
  }

  /**
   * Store the planned deliveries of a message and set its status from them (`routed`, or
   * `delivered`/`failed` if an earlier plan already finished). Resolves with the ids newly
   * inserted; emits `enqueued` so a worker in this process starts at once instead of polling.
   * With `dedup`, recipients an earlier copy of the message (through another relay) already
   * took are dropped first (delivery/duplicates.ts).
   */
  async enqueue(
    messageId: string,
    plan: PlannedDelivery[],
    opts: { dedup?: { message: ClaimingMessage; policy: DedupPolicy } } = {},
  ): Promise<string[]> {
    if (!plan.length) return [];
    const now = new Date().toISOString();
    // On SQLite the plan is committed relaxed, like the parse result it comes from and the
    // lease that follows it (no WAL fsync of its own: p50 4 → 3 ms, p99 ~25 → ~14 ms from 250
    // to webhook at 100/s). The attempt's finish is durable and the WAL is one ordered log, so
    // its fsync covers them all. A power cut before then loses the plan with the machine; the
    // start-up sweep (pipeline.ts) plans it again under the same delivery ids, so at worst a
    // delivery is made once more with the same id, as a lost lease would cause anyway.
    // PostgreSQL can lose asynchronous commits in a crash of its own while we keep running and
    // never sweep: durable there (and measured no faster relaxed).
    const mode = this.db.dialect === 'sqlite' ? 'relaxed' : 'durable';
    const { dedup } = opts;
    const inserted = await batchedWrite(this.db, mode, async (trx) => {
      // Per run of this write: batchedWrite runs a failed batch's writes again alone.
      let planned = plan;
      if (dedup) {
        // In the plan's own transaction: a copy planned at the same moment waits on the claim.
        const claimed = await claimDeliveries(trx, dedup.message, planned, dedup.policy, new Date(now));
        planned = claimed.planned;
        if (claimed.duplicateOf) {
          const note = planned.length ? {} : { error: duplicateNote(claimed.duplicateOf) };
          await trx.updateTable('messages').set({ duplicate_of: claimed.duplicateOf, ...note }).where('id', '=', messageId).execute();
        }
      }
      const ids = await insertDeliveries(trx, this.rows(messageId, planned, now));
      await refreshMessageStatus(trx, this.db.dialect, messageId);
      return ids;
    });
    if (inserted.length) this.emit('enqueued', inserted);
    return inserted;
  }

  private rows(messageId: string, planned: PlannedDelivery[], now: string): DeliveriesTable[] {
    const rows = new Map<string, DeliveriesTable>();
    for (const p of planned) {
      const id = deliveryId(messageId, p.route, p.targetIndex, p.destination);
      const prior = rows.get(id);
      if (prior) {
        // The same route, target and destination planned twice (a forced plan and a routed
        // one): one delivery for the recipients of both.
        const rcpts = new Set([...(JSON.parse(prior.recipients) as string[]), ...p.recipients]);
        prior.recipients = JSON.stringify([...rcpts]);
        const captures = { ...JSON.parse(prior.recipient_captures ?? '{}'), ...p.recipientCaptures };
        prior.recipient_captures = JSON.stringify(captures);
        continue;
      }
      rows.set(id, pendingDeliveryRow(messageId, p, now));
    }
    return [...rows.values()];
  }
}
