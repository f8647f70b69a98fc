import type { ParsedMessage, PlannedDelivery } from '../core/delivery.js';
import type { BlobStore } from '../core/ports.js';
import type { Db } from '../store/db.js';
import { batchedWrite } from '../store/write-batch.js';
import type { Logger } from '../telemetry/log.js';
import type { ParsedNow } from '../mime/parse-worker.js';
import { describeUnrouted } from '../routing/no-route.js';
import type { Router } from '../routing/router.js';
import { buildParsedView, viewOfParse } from './parsed-view.js';
import type { DedupPolicy } from './duplicates.js';
import type { DeliveryQueue } from './queue.js';

/**
 * Starts the error of a message no route took (followed by each route's reason), so the
 * start-up sweep does not plan it again and again.
 */
export const NO_ROUTE = 'no route took any recipient';

/** The part of the router the planner needs. */
export type Planning = Pick<Router, 'evaluate'>;

/**
 * The step between parsing and delivery: when a message is parsed, ask the router for its
 * deliveries and store them. Only mail that arrived is routed (status `received`, parsed or
 * kept raw: routing looks at the envelope); our own outbound messages
 * (DSNs, status `sending`) never are. A crash between parse and plan is healed by `sweep()`.
 */
export class Planner {
  constructor(
    private readonly deps: {
      db: Db;
      blobs: BlobStore;
      router: Planning;
      queue: DeliveryQueue;
      log: Logger;
      /** A plan decided before routing (fetched mail whose folder names a route); undefined: route as usual. */
      forced?: (parsed: ParsedMessage) => Promise<PlannedDelivery[] | undefined>;
      /** Copies of one message through two relays are delivered once (delivery/duplicates.ts); absent: every copy. */
      dedup?: DedupPolicy;
    },
  ) {}

  private readonly inFlight = new Set<Promise<void>>();
  private stopped = false;

  /**
   * Plan one parsed message; errors are logged (the sweep at the next start retries). `parsed`:
   * what the parse worker just saved, so the message need not be read back from the store.
   */
  plan(messageId: string, parsed?: ParsedNow): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const p = this.planOne(messageId, parsed).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
    return p;
  }

  /** Take no new work and wait for plans in flight (before the database closes). */
  async stop(): Promise<void> {
    this.stopped = true;
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
  }

  private async planOne(messageId: string, parsed?: ParsedNow): Promise<void> {
    const { db, router, queue, log } = this.deps;
    try {
      const view = parsed ? viewOfParse(this.deps.blobs, parsed.message, parsed.saved) : await buildParsedView(this.deps, messageId);
      if (view.message.status !== 'received') return;
      const forced = await this.deps.forced?.(view);
      const { deliveries: planned, unrouted } = forced ? { deliveries: forced, unrouted: [] } : await router.evaluate(view);
      if (!planned.length) {
        const error = unrouted.length ? `${NO_ROUTE}: ${describeUnrouted(unrouted)}` : NO_ROUTE;
        if (view.message.status === 'received') {
          // Derived from the kept message: if a crash loses this mark, the sweep plans it again.
          await batchedWrite(db, 'relaxed', (trx) =>
            trx.updateTable('messages').set({ error }).where('id', '=', messageId).execute(),
          );
        }
        log.info({ id: messageId, error }, NO_ROUTE);
        return;
      }
      const m = view.message;
      const dedup = this.deps.dedup && { message: { id: m.id, messageId: m.messageId, contentSha256: m.contentSha256 }, policy: this.deps.dedup };
      await queue.enqueue(messageId, planned, { dedup });
    } catch (err) {
      log.error({ err, id: messageId }, 'could not plan deliveries; retried at the next start');
    }
  }

  /** Plan every parsed message that arrived but has no deliveries yet (e.g. after a crash). */
  async sweep(batch = 500): Promise<number> {
    const { db } = this.deps;
    let after = '';
    let planned = 0;
    for (;;) {
      const rows = await db.kysely
        .selectFrom('messages')
        .select('id')
        .where('id', '>', after)
        .where('parsed_at', 'is not', null)
        .where((eb) =>
          eb.or([
            // A copy whose recipients all went to an earlier copy has no deliveries, by design.
            eb.and([eb('status', '=', 'received'), eb('duplicate_of', 'is', null), eb.or([eb('error', 'is', null), eb('error', 'not like', `${NO_ROUTE}%`)])]),
            eb('status', '=', 'raw'),
          ]),
        )
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('deliveries').select('deliveries.id').whereRef('deliveries.message', '=', 'messages.id'))),
        )
        .orderBy('id')
        .limit(batch)
        .execute();
      for (const r of rows) {
        if (this.stopped) return planned;
        await this.plan(r.id);
      }
      planned += rows.length;
      if (rows.length < batch) return planned;
      after = rows[rows.length - 1].id;
    }
  }
}
