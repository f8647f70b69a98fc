import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import { redact } from '../../delivery/redact.js';
import { REPLAYABLE, replayMatching } from '../../store/delivery-replay.js';
import { getAttempts, getDelivery, listDeliveries, readRecipientOutcomes, retryDelivery, type DeliveryRecord } from '../../store/deliveries.js';
import { defineRoute } from '../route.js';
import { Id } from '../schemas.js';
import type { ApiDeps } from '../deps.js';

export const DELIVERIES = '/api/v1/deliveries';

const DeliveryStatus = z.enum(['pending', 'held', 'done', 'failed', 'dead']);

export const DeliveryListQuery = z.strictObject({
  status: DeliveryStatus.optional().describe('pending, held (quarantined by a route\'s authFailure: POST .../retry releases it), done, failed or dead'),
  route: z.string().min(1).max(200).optional().describe('route name'),
  target: z.string().min(1).max(50).optional().describe('target kind: webhook, smtp, folder…'),
  error: z.string().min(1).max(500).optional().describe('a case-insensitive substring of the last error'),
  message: Id.optional().describe('deliveries of one message'),
  limit: z.coerce.number().int().min(1).max(500).default(50).describe('page size (1–500)'),
  cursor: z.string().max(200).optional().describe('opaque: the nextCursor of the previous page'),
});

/** A delivery id (src/store/deliveries.ts deliveryId: `dlv_` and hex of a hash); anything else cannot exist. */
const DeliveryParams = z.strictObject({ id: z.string().regex(/^dlv_[0-9a-f]{16,64}$/, 'not an id') });

const Delivery = z.object({
  id: z.string().describe('stable: message + route + target + destination; the idempotency key (webhook-id) sent to the target'),
  messageId: z.string(),
  route: z.string(),
  targetIndex: z.number().int(),
  kind: z.string(),
  params: z.unknown().describe('target params as routed, secrets replaced by "***"'),
  recipients: z.array(z.string()),
  captures: z.record(z.string(), z.string()).describe("the first recipient's captures"),
  recipientCaptures: z
    .record(z.string(), z.record(z.string(), z.string()))
    .describe('each recipient with the captures its own address produced'),
  destination: z
    .string()
    .describe("where the delivery lands as its target names it (a folder, a group, a recipient); '' when the target takes several recipients at once"),
  status: DeliveryStatus,
  attempts: z.number().int().describe('attempts since planned or last replayed'),
  firstAttemptAt: z.string().nullable(),
  nextAttemptAt: z.string(),
  leaseOwner: z.string().nullable(),
  leaseUntil: z.string().nullable(),
  lastError: z.string().nullable(),
  receipt: z.record(z.string(), z.unknown()).nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const Attempt = z.object({
  n: z.number().int(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  outcome: z.string().nullable().describe('done, transient, permanent or dead; null: the worker died mid-attempt'),
  error: z.string().nullable(),
  enhancedStatus: z.string().nullable(),
  nextAttemptAt: z.string().nullable().describe('when the retry was scheduled, after a transient failure'),
});

const DeliveryList = z.object({ items: z.array(Delivery), nextCursor: z.string().nullable() });
const RecipientOutcome = z.object({
  recipient: z.string(),
  status: z.enum(['done', 'deferred', 'failed']),
  reply: z.string().nullable().describe("the remote reply (or connection error) that decided it"),
  enhancedStatus: z.string().nullable(),
});

const DeliveryDetail = Delivery.extend({
  history: z.array(Attempt).describe('every attempt, oldest first'),
  recipientOutcomes: z
    .array(RecipientOutcome)
    .describe('per recipient, for a target taking several at once (forward): done ones are not sent again, deferred ones are retried'),
});

export const ReplayRequest = z.strictObject({
  status: z.enum(REPLAYABLE).default('dead').describe('which settled deliveries: dead (default), failed or done; pending ones are queued already'),
  route: z.string().min(1).max(200).optional().describe('route name'),
  target: z.string().min(1).max(50).optional().describe('target kind: webhook, smtp, folder…'),
  destination: z.string().max(1000).optional().describe('where it lands as the target names it (exact)'),
  message: Id.optional().describe('deliveries of one message'),
  error: z.string().min(1).max(500).optional().describe('a case-insensitive substring of the last error'),
  since: z.iso.datetime({ offset: true }).optional().describe('last changed (a dead letter: died) at or after this time'),
  until: z.iso.datetime({ offset: true }).optional().describe('last changed before this time'),
  cap: z.number().int().min(1).max(100_000).default(10_000).describe('replay at most this many (in id order); the rest are left as they are'),
  perSecond: z
    .number()
    .min(0.1)
    .max(1000)
    .default(10)
    .describe('due times are staggered so the target is handed at most this many a second'),
  dryRun: z.boolean().default(false).describe('only count: nothing changes'),
});

const ReplayResult = z.object({
  dryRun: z.boolean(),
  matched: z.number().int().describe('deliveries matching the filter'),
  selected: z.number().int().describe('of those, what the cap lets through'),
  replayed: z.number().int().describe('made pending again (0 in a dry run; fewer than selected if some changed meanwhile)'),
  perSecond: z.number(),
  firstDueAt: z.string().nullable(),
  lastDueAt: z.string().nullable().describe('when the last one is due: the replay is spread until then'),
});

/** A delivery as the API shows it. */
export function deliveryOf(d: DeliveryRecord): z.output<typeof Delivery> {
  return { ...d, params: redact(d.params), receipt: d.receipt as Record<string, unknown> | null };
}

function encodeCursor(lastId: string): string {
  return Buffer.from(JSON.stringify({ v: 1, after: lastId })).toString('base64url');
}

function decodeCursor(cursor: string): string {
  try {
    const c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { v?: number; after?: unknown };
    if (c.v === 1 && typeof c.after === 'string' && /^[0-9a-z_-]{1,64}$/i.test(c.after)) return c.after;
  } catch {
    // not base64url JSON: as invalid as the wrong shape
  }
  throw mailError('INVALID_REQUEST', 'query.cursor: not a cursor returned by this API');
}

/** GET /api/v1/deliveries, GET /api/v1/deliveries/:id, POST /api/v1/deliveries/:id/retry, POST /api/v1/deliveries/replay. */
export async function deliveryRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  defineRoute(
    app,
    {
      method: 'GET',
      url: DELIVERIES,
      summary: 'List deliveries, filtered by status, route, target kind, last error or message',
      description: 'Pages in delivery-id order; pass `nextCursor` back as `cursor` with the same filters.',
      tags: ['deliveries'],
      query: DeliveryListQuery,
      responses: { 200: { description: 'one page of deliveries', schema: DeliveryList } },
    },
    async ({ query }) => {
      const { cursor, limit, ...filters } = query;
      const rows = await listDeliveries(deps.db.kysely, { ...filters, after: cursor ? decodeCursor(cursor) : undefined, limit: limit + 1 });
      const page = rows.slice(0, limit);
      return { items: page.map(deliveryOf), nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1].id) : null };
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: `${DELIVERIES}/:id`,
      summary: 'One delivery with every attempt (when it ran, how it ended, when the retry was due)',
      tags: ['deliveries'],
      params: DeliveryParams,
      responses: { 200: { description: 'the delivery; attempts in `history`', schema: DeliveryDetail } },
    },
    async ({ params }) => {
      const d = await getDelivery(deps.db.kysely, params.id);
      if (!d) throw mailError('NOT_FOUND', `No delivery ${params.id}`);
      const attempts = await getAttempts(deps.db.kysely, d.id);
      const outcomes = await readRecipientOutcomes(deps.db.kysely, d.id);
      return { ...deliveryOf(d), history: attempts.map(({ id: _id, ...a }) => a), recipientOutcomes: [...outcomes.values()] };
    },
  );

  defineRoute(
    app,
    {
      method: 'POST',
      url: `${DELIVERIES}/:id/retry`,
      summary: 'Replay a delivery now: pending again with a fresh attempt budget (history kept)',
      description: 'A pending delivery is only made due now; its lease and attempt count are left alone.',
      tags: ['deliveries'],
      role: 'operator',
      audit: 'delivery.retry',
      params: DeliveryParams,
      responses: { 200: { description: 'the delivery, pending', schema: Delivery } },
    },
    async ({ params }) => {
      const d = await retryDelivery(deps.db, params.id);
      if (!d) throw mailError('NOT_FOUND', `No delivery ${params.id}`);
      deps.onDeliveryRetry?.(d.id);
      return deliveryOf(d);
    },
  );

  defineRoute(
    app,
    {
      method: 'POST',
      url: `${DELIVERIES}/replay`,
      summary: 'Replay every delivery matching a filter, paced (dead letters by default); dryRun only counts',
      description:
        'Each is made pending again with a fresh attempt budget, due at a staggered time (`perSecond`), so a replay of ' +
        '10,000 does not hit the target at once. At most `cap` are replayed, in id order. The filter and the counts are in the audit log.',
      tags: ['deliveries'],
      role: 'operator',
      audit: 'delivery.replay',
      body: ReplayRequest,
      responses: { 200: { description: 'what matched and what was replayed', schema: ReplayResult } },
    },
    async ({ body, request }) => {
      const { cap, perSecond, dryRun, ...filter } = body;
      if (filter.since && filter.until && Date.parse(filter.since) >= Date.parse(filter.until)) {
        throw mailError('INVALID_REQUEST', 'body.until: must be after since');
      }
      const r = await replayMatching(deps.db, filter, { cap, perSecond, dryRun });
      request.auditNote = { object: 'deliveries', detail: { filter, cap, perSecond, dryRun, matched: r.matched, replayed: r.replayed } };
      if (r.replayed) deps.onDeliveryRetry?.('replay');
      return { dryRun, ...r };
    },
  );
}
