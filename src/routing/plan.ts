import type { ParsedMessage, PlannedDelivery } from '../core/delivery.js';
import type { BlobStore } from '../store/ports.js';
import type { Db } from '../store/db.js';
import { batchedWrite } from '../store/write-batch.js';
import type { Logger } from '../telemetry/log.js';
import type { ParsedNow } from '../mime/parse-and-store.js';
import { describeUnrouted } from './no-route.js';
import type { Router } from './router.js';
import { buildParsedView, viewOfParse } from '../mime/parsed-view.js';

/**
 * Starts the error of a message no route took (followed by each route's reason), so the
 * start-up sweep does not plan it again and again.
 */
export const NO_ROUTE = 'no route took any recipient';

/** The part of the router the planner needs. */
export type Planning = Pick<Router, 'evaluate'>;

/** The deliveries of one message, and what the queue needs to drop copies of it (delivery/duplicates.ts). */
export interface Plan {
  deliveries: PlannedDelivery[];
  message: { id: string; messageId: string | null; contentSha256?: string | null };
}

/**
 * The step between parsing and the queue: a parsed message's deliveries, from its forced
 * route (fetched mail whose folder names one) or from the rules. Only mail that arrived is
 * routed (status `received`, parsed or kept raw: routing looks at the envelope); our own
 * outbound messages (DSNs, status `sending`) never are. A message no route takes is marked
 * (NO_ROUTE) so that `unplanned()` does not list it again.
 */
export class Planner {
  constructor(
    private readonly deps: {
      db: Db;
      blobs: BlobStore;
      router: Planning;
      /** The router of an earlier routing generation, for mail accepted under it (routing/live.ts); undefined: the current one. */
      routerAt?: (generation: number) => Planning | undefined;
      log: Logger;
      /**
       * Whether a message was taken before routing (fetched into a folder that sends what
       * arrives, outbound/send-on-arrival.ts): it is no longer `received`, so nothing plans it again.
       */
      taken?: (parsed: ParsedMessage) => Promise<boolean>;
      /** A plan decided before routing (fetched mail whose folder names a route); undefined: route as usual. */
      forced?: (parsed: ParsedMessage) => Promise<PlannedDelivery[] | undefined>;
    },
  ) {}

  /**
   * The plan of one message, or undefined when it has none. `parsed`: what the parse step just
   * saved, so the message need not be read back from the store; `generation`: the routing
   * generation it was accepted under. Throws when the store fails.
   */
  async plan(messageId: string, parsed?: ParsedNow, generation?: number): Promise<Plan | undefined> {
    const { db, log } = this.deps;
    const router = (generation !== undefined && this.deps.routerAt?.(generation)) || this.deps.router;
    const view = parsed ? viewOfParse(this.deps.blobs, parsed.message, parsed.saved) : await buildParsedView(this.deps, messageId);
    if (view.message.status !== 'received') return undefined;
    if (await this.deps.taken?.(view)) return undefined;
    const forced = await this.deps.forced?.(view);
    const { deliveries, unrouted } = forced ? { deliveries: forced, unrouted: [] } : await router.evaluate(view);
    if (!deliveries.length) {
      const error = unrouted.length ? `${NO_ROUTE}: ${describeUnrouted(unrouted)}` : NO_ROUTE;
      // Derived from the kept message: if a crash loses this mark, the sweep plans it again.
      await batchedWrite(db, 'relaxed', (trx) => trx.updateTable('messages').set({ error }).where('id', '=', messageId).execute());
      log.info({ id: messageId, error }, NO_ROUTE);
      return undefined;
    }
    const m = view.message;
    return { deliveries, message: { id: m.id, messageId: m.messageId, contentSha256: m.contentSha256 } };
  }

  /** Every parsed message that arrived but has no deliveries yet (e.g. after a crash), in id order. */
  async *unplanned(batch = 500): AsyncIterable<string> {
    const { db } = this.deps;
    let after = '';
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
      for (const r of rows) yield r.id;
      if (rows.length < batch) return;
      after = rows[rows.length - 1].id;
    }
  }
}
