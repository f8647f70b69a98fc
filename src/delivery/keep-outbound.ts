import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { newId } from '../core/ids.js';
import type { BlobStore } from '../store/ports.js';
import { transact, type Db } from '../store/db.js';
import { insertDeliveries, pendingDeliveryRow } from '../store/deliveries.js';
import { insertMessages, newMessageRow } from '../store/messages.js';
import { HeaderSniffer } from '../mime/header-sniff.js';

/** The delivery route DSNs are queued under (the `dsn` target, outbound/send-dsn.ts, sends them). */
export const DSN_ROUTE = 'dsn';

/** Keeps a DSN and queues its delivery; resolves with the DSN's message id. */
export type KeepOutbound = (
  envelope: { mailFrom: string; rcptTo: string[] },
  raw: Uint8Array,
  /** `source`: the delivery that produced it; the same source keeps one DSN, however often it runs. */
  opts?: { source?: string },
) => Promise<string>;

/** The dedup key of the DSN a delivery produced: a replay or a retaken lease finds the first one. */
function sourceKey(source: string): string {
  return createHash('sha256').update(`dsn\0${source}`).digest('hex');
}

/**
 * Keeps a message we generated (a DSN) as an outbound message: raw bytes fsynced into the blob
 * store, a row with ingress `dsn` and status `sending`, and its `dsn` delivery, all in one
 * transaction, so a crash can neither lose the bounce nor leave one nobody will send. It goes
 * through the store rather than straight to a relay so it survives a restart, and out through
 * `groups.relay` rather than the relay that just refused the original (a poor bet for carrying
 * the bounce). Such rows are never routed: routing takes only mail that arrived (`received`).
 */
export function keepOutbound(deps: { db: Db; blobs: BlobStore; onQueued?: () => void; onKept?: (id: string) => void }): KeepOutbound {
  return async (envelope, raw, opts = {}) => {
    const { db, blobs } = deps;
    const key = opts.source ? sourceKey(opts.source) : null;
    if (key) {
      const prior = await db.kysely.selectFrom('messages').select('id').where('dedup_key', '=', key).executeTakeFirst();
      if (prior) return prior.id;
    }
    const sniffer = new HeaderSniffer();
    sniffer.push(raw);
    const head = sniffer.result();
    const staged = await blobs.stage(Readable.from([Buffer.from(raw)]));
    const id = newId();
    const now = new Date();
    const row = {
      ...newMessageRow(id, { mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, ingress: 'dsn', receivedAt: now }, staged, head, null),
      dedup_key: key,
      status: 'sending',
    };
    const delivery = pendingDeliveryRow(
      id,
      { route: DSN_ROUTE, targetIndex: 0, kind: 'dsn', params: {}, recipients: envelope.rcptTo, captures: {} },
      now.toISOString(),
    );
    try {
      const kept = await transact(db, async (trx) => {
        await blobs.commit([staged], trx);
        const [m] = await insertMessages(trx, [row]);
        // A duplicate (another worker kept this source's DSN meanwhile) already has its delivery.
        if (!m.duplicate) await insertDeliveries(trx, [delivery]);
        return m;
      });
      if (!kept.duplicate) {
        deps.onKept?.(kept.id);
        deps.onQueued?.();
      }
      return kept.id;
    } catch (err) {
      await blobs.discard(staged);
      throw err;
    }
  };
}
