import { EventEmitter } from 'node:events';
import type { PlannedDelivery } from '../core/delivery.js';
import type { Db } from '../store/db.js';
import { deliveryId, insertDeliveries, pendingDeliveryRow, refreshMessageStatus } from '../store/deliveries.js';
import type { DeliveriesTable } from '../store/schema.js';
import { batchedWrite } from '../store/write-batch.js';

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
   */
  async enqueue(messageId: string, planned: PlannedDelivery[]): Promise<string[]> {
    if (!planned.length) return [];
    const now = new Date().toISOString();
    const rows = new Map<string, DeliveriesTable>();
    for (const p of planned) {
      const id = deliveryId(messageId, p.route, p.targetIndex);
      const prior = rows.get(id);
      if (prior) {
        // Two recipients mapping to one route and target: one delivery for both.
        const rcpts = new Set([...(JSON.parse(prior.recipients) as string[]), ...p.recipients]);
        prior.recipients = JSON.stringify([...rcpts]);
        continue;
      }
      rows.set(id, pendingDeliveryRow(messageId, p, now));
    }
    const inserted = await batchedWrite(this.db, 'durable', async (trx) => {
      const ids = await insertDeliveries(trx, [...rows.values()]);
      await refreshMessageStatus(trx, this.db.dialect, messageId);
      return ids;
    });
    if (inserted.length) this.emit('enqueued', inserted);
    return inserted;
  }
}
