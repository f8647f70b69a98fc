import { createHash } from 'node:crypto';
import { sql, type ExpressionBuilder, type Kysely, type SelectQueryBuilder, type SqlBool, type Transaction } from 'kysely';
import type { PlannedDelivery, Receipt, RecipientOutcome } from '../core/delivery.js';
import { newId } from '../core/ids.js';
import { relaxedTransaction, transact, type Db } from './db.js';
import type { Database, DeliveriesTable, DeliveryAttemptsTable } from './schema.js';
import type { Dialect } from './schema.js';

type Q = Kysely<Database> | Transaction<Database>;

/** held: quarantined by a route's authFailure; never leased until released (retry or replay). */
export type DeliveryStatus = 'pending' | 'held' | 'done' | 'failed' | 'dead';

/** A delivery as the API, the CLI and the worker see it. */
export interface DeliveryRecord {
  id: string;
  messageId: string;
  route: string;
  targetIndex: number;
  kind: string;
  params: unknown;
  recipients: string[];
  captures: Record<string, string>;
  /** Each recipient's own captures. */
  recipientCaptures: Record<string, Record<string, string>>;
  /** Where the delivery lands as its target names it; '' for a target taking several recipients at once. */
  destination: string;
  status: DeliveryStatus;
  attempts: number;
  firstAttemptAt: string | null;
  nextAttemptAt: string;
  leaseOwner: string | null;
  leaseUntil: string | null;
  lastError: string | null;
  receipt: Receipt | null;
  createdAt: string;
  updatedAt: string;
}

/** One attempt, kept so that backoff can be seen afterwards. */
export interface AttemptRecord {
  id: string;
  n: number;
  startedAt: string;
  finishedAt: string | null;
  /** done | transient | permanent | dead; null while running or when the worker died mid-attempt. */
  outcome: string | null;
  error: string | null;
  enhancedStatus: string | null;
  nextAttemptAt: string | null;
}

/**
 * The delivery id: a hash of message id, route, target index and destination. The same message
 * planned again gets the same ids, so the insert is a no-op (DESIGN promise 4) and a plan
 * interrupted mid-fan-out is completed, not repeated; the target gets the same idempotency key
 * on every attempt. An empty destination (a target taking several recipients at once) keeps
 * the id deliveries had before destinations were part of it.
 */
export function deliveryId(messageId: string, route: string, targetIndex: number, destination = ''): string {
  const key = `${messageId}\0${route}\0${targetIndex}${destination ? `\0${destination}` : ''}`;
  const h = createHash('sha256').update(key).digest('hex');
  return `dlv_${h.slice(0, 32)}`;
}

/** A row as the DeliveryRecord contract. */
export function toDeliveryRecord(r: DeliveriesTable): DeliveryRecord {
  return {
    id: r.id,
    messageId: r.message,
    route: r.route,
    targetIndex: r.target_index,
    kind: r.kind,
    params: JSON.parse(r.params) as unknown,
    recipients: JSON.parse(r.recipients) as string[],
    captures: JSON.parse(r.captures) as Record<string, string>,
    recipientCaptures: recipientCapturesOf(r),
    destination: r.destination,
    status: r.status as DeliveryStatus,
    attempts: r.attempts,
    firstAttemptAt: r.first_attempt_at,
    nextAttemptAt: r.next_attempt_at,
    leaseOwner: r.lease_owner,
    leaseUntil: r.lease_until,
    lastError: r.last_error,
    receipt: r.receipt ? (JSON.parse(r.receipt) as Receipt) : null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Rows planned before recipients had captures of their own carry the delivery's for each. */
function recipientCapturesOf(r: DeliveriesTable): Record<string, Record<string, string>> {
  if (r.recipient_captures) return JSON.parse(r.recipient_captures) as Record<string, Record<string, string>>;
  const captures = JSON.parse(r.captures) as Record<string, string>;
  return Object.fromEntries((JSON.parse(r.recipients) as string[]).map((rcpt) => [rcpt, captures]));
}

function toAttemptRecord(r: DeliveryAttemptsTable): AttemptRecord {
  return {
    id: r.id,
    n: r.n,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    outcome: r.outcome,
    error: r.error,
    enhancedStatus: r.enhanced_status,
    nextAttemptAt: r.next_attempt_at,
  };
}

/** A new `pending` deliveries row for one planned delivery of a message, due now. */
export function pendingDeliveryRow(messageId: string, p: PlannedDelivery, now: string): DeliveriesTable {
  return {
    id: deliveryId(messageId, p.route, p.targetIndex, p.destination),
    message: messageId,
    route: p.route,
    target_index: p.targetIndex,
    kind: p.kind,
    params: JSON.stringify(p.params ?? {}),
    recipients: JSON.stringify(p.recipients),
    captures: JSON.stringify(p.captures ?? {}),
    recipient_captures: p.recipientCaptures ? JSON.stringify(p.recipientCaptures) : null,
    destination: p.destination ?? '',
    status: p.held ? 'held' : 'pending',
    attempts: 0,
    first_attempt_at: null,
    next_attempt_at: now,
    lease_owner: null,
    lease_until: null,
    last_error: p.held ?? null,
    receipt: null,
    created_at: now,
    updated_at: now,
  };
}

/** Insert delivery rows; rows whose id already exists are left alone. Returns the ids inserted. */
export async function insertDeliveries(trx: Q, rows: DeliveriesTable[]): Promise<string[]> {
  if (!rows.length) return [];
  const inserted = await trx
    .insertInto('deliveries')
    .values(rows)
    .onConflict((oc) => oc.column('id').doNothing())
    .returning('id')
    .execute();
  return inserted.map((r) => r.id);
}

/** Statuses of messages we send ourselves; their deliveries decide between them. */
const OUTBOUND_STATUSES = new Set(['sending', 'sent', 'error']);

/**
 * Recompute a message's status from its deliveries: `failed` when any failed or died,
 * `delivered` when all are done, else `routed`. Call inside the transaction that changed them.
 */
export async function refreshMessageStatus(trx: Q, dialect: Dialect, messageId: string): Promise<void> {
  // PostgreSQL: two workers finishing two deliveries of one message at once would each see the
  // other's row still pending and both leave the message `routed`. Locking the message row first
  // serialises them; under READ COMMITTED the second then reads the first's committed status.
  // SQLite has one writer at a time already. The lock and the read of the prior status are one
  // statement (a round trip fewer on PostgreSQL, twice per delivered message).
  const priorQuery = trx.selectFrom('messages').select('status').where('id', '=', messageId);
  const prior = await (dialect === 'postgres' ? priorQuery.forUpdate() : priorQuery).executeTakeFirst();
  const rows = await trx.selectFrom('deliveries').select(['status', 'last_error']).where('message', '=', messageId).execute();
  if (!rows.length) return;
  const bad = rows.find((r) => r.status === 'failed' || r.status === 'dead');
  if (prior && OUTBOUND_STATUSES.has(prior.status)) {
    // A message we send (outbound/send.ts) reads sending → sent | error, with the reason kept.
    const pending = rows.find((r) => r.status === 'pending');
    const out = bad ? 'error' : rows.every((r) => r.status === 'done') ? 'sent' : 'sending';
    const why = bad ? bad.last_error : out === 'sending' ? (pending?.last_error ?? null) : null;
    await trx.updateTable('messages').set({ status: out, error: why, updated_at: new Date().toISOString() }).where('id', '=', messageId).execute();
    return;
  }
  const held = rows.some((r) => r.status === 'held');
  const status = bad ? 'failed' : rows.every((r) => r.status === 'done') ? 'delivered' : held ? 'held' : 'routed';
  // The error column says why a message failed; other errors (a parse failure of a message kept
  // as raw) stay, and a failure's text goes once a replay leaves nothing failed.
  // The failing delivery's reason is carried onto the message (a refused sender, a 5xx), so the
  // message list shows why without opening its deliveries.
  const why = bad ? `a delivery is ${bad.status}${bad.last_error ? `: ${bad.last_error}` : ''}`.slice(0, 1000) : null;
  const error = bad ? { error: why } : prior?.status === 'failed' ? { error: null } : {};
  await trx
    .updateTable('messages')
    .set({ status, ...error, updated_at: new Date().toISOString() })
    .where('id', '=', messageId)
    .execute();
}

/**
 * Lease up to `limit` due deliveries for `owner` until `now + leaseMs`: pending, due, and not
 * leased (or leased by someone whose lease ran out: a worker killed mid-delivery). Each leased
 * row's attempt count goes up here, so a delivery that kills its worker every time still dies
 * after maxAttempts instead of looping forever.
 */
export async function leaseDue(db: Db, opts: LeaseOptions): Promise<DeliveryRecord[]> {
  return lease(db, opts, async () => {});
}

/** A leased delivery and the attempt started for it. */
export interface LeasedDelivery extends DeliveryRecord {
  attemptId: string;
}

/**
 * leaseDue, and record the start of an attempt of each leased delivery in the same transaction
 * (what a worker does next anyway): one commit per batch instead of one per delivery.
 */
export async function leaseForAttempts(db: Db, opts: LeaseOptions): Promise<LeasedDelivery[]> {
  let ids: string[] = [];
  const leased = await lease(db, opts, async (trx, rows, now) => {
    ids = await insertAttempts(trx, rows.map((r) => ({ delivery: r.id, n: r.attempts })), now);
  });
  return leased.map((d, i) => ({ ...d, attemptId: ids[i] }));
}

/** A route's target: what a pause or a full destination holds back in the lease query. */
export interface RouteTarget {
  route: string;
  targetIndex: number;
}

/** A due delivery the lease query offers to `admit`, before it is leased. */
export interface LeaseCandidate {
  id: string;
  route: string;
  targetIndex: number;
  kind: string;
  params: string;
}

interface LeaseOptions {
  owner: string;
  leaseMs: number;
  limit: number;
  now?: Date;
  /** Route targets whose deliveries are not to be leased now (their destination is full or paused). */
  exclude?: readonly RouteTarget[];
  /**
   * Chooses, in due order, which candidates to lease (at most `limit` are taken): lets the worker
   * cap each destination within one batch. Without it the first `limit` due are leased.
   */
  admit?: (c: LeaseCandidate) => boolean;
  /**
   * Only deliveries due at or after this time (ISO): the caller knows every due one before it
   * is held back or leased (see `onScan`), so the query seeks past them instead of stepping over
   * a stuck destination's thousands of due rows at every lease.
   */
  dueFrom?: string;
  /**
   * Told when the query has run: the due time of the first delivery it found that is not held
   * back (leased in this batch or not), or undefined when there was none. Every free due
   * delivery before it was held back.
   */
  onScan?: (firstDue: string | undefined) => void;
}

/**
 * Leave out the deliveries of these route targets and of paused ones (paused_targets: 410 Gone,
 * until an operator resumes it). The few paused rows are read first and compared as plain
 * columns, which the due index holds: a backlog of thousands held back is passed over in the
 * index, without a subquery or a row read for each.
 */
async function holdBack<Q extends { where: (f: (w: ExpressionBuilder<Database, 'deliveries'>) => any) => Q }>(
  trx: Kysely<Database> | Transaction<Database>,
  q: Q,
  exclude: readonly RouteTarget[],
): Promise<Q> {
  const paused = await trx.selectFrom('paused_targets').select(['route', 'target_index']).execute();
  for (const x of [...exclude, ...paused.map((p) => ({ route: p.route, targetIndex: p.target_index }))]) {
    q = q.where((w) => w.or([w('route', '!=', x.route), w('target_index', '!=', x.targetIndex)]));
  }
  return q;
}

async function lease(
  db: Db,
  opts: LeaseOptions,
  alsoIn: (trx: Transaction<Database>, rows: DeliveriesTable[], now: Date) => Promise<void>,
): Promise<DeliveryRecord[]> {
  if (opts.limit <= 0) return [];
  const at = opts.now ?? new Date();
  const now = at.toISOString();
  const until = new Date(at.getTime() + opts.leaseMs).toISOString();
  const set = {
    lease_owner: opts.owner,
    lease_until: until,
    updated_at: now,
  };
  // PostgreSQL: the SELECT locks with SKIP LOCKED, so workers on other nodes take other rows
  // instead of queueing behind ours. SQLite: a single write transaction; a second process waits
  // on the write lock and then sees the new leases. Relaxed (no fsync of its own) on both: a
  // lease lost to a power cut only means the delivery is leased again after the restart, and
  // the attempt's durable finish syncs the log past it.
  // Paused route targets (paused_targets) and the caller's excluded ones are left out here, in
  // the query: a stuck destination's backlog, due first, must not fill every batch and starve
  // the deliveries behind it.
  const rows = await relaxedTransaction(db.kysely, async (trx) => {
    let due = trx
      .selectFrom('deliveries')
      .select(['id', 'route', 'target_index', 'kind', 'params', 'next_attempt_at'])
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', now)
      .where((w) => w.or([w('lease_until', 'is', null), w('lease_until', '<', now)]));
    if (opts.dueFrom) due = due.where('next_attempt_at', '>=', opts.dueFrom);
    due = await holdBack(trx, due, opts.exclude ?? []);
    // With `admit`, look a little further than `limit`: a batch's own cap may pass some by.
    due = due.orderBy('next_attempt_at').limit(opts.admit ? Math.max(32, opts.limit * 4) : opts.limit);
    const candidates = await (db.dialect === 'postgres' ? due.forUpdate().skipLocked() : due).execute();
    opts.onScan?.(candidates[0]?.next_attempt_at);
    const ids: string[] = [];
    for (const c of candidates) {
      if (ids.length >= opts.limit) break;
      if (!opts.admit || opts.admit({ id: c.id, route: c.route, targetIndex: c.target_index, kind: c.kind, params: c.params })) ids.push(c.id);
    }
    if (!ids.length) return [];
    const leased = await trx
      .updateTable('deliveries')
      .set((eb) => ({
        ...set,
        attempts: eb('attempts', '+', 1),
        first_attempt_at: eb.fn.coalesce('first_attempt_at', eb.val(now)),
      }))
      .where('id', 'in', ids)
      // Still free: another process may have leased one between our read and this write.
      .where('status', '=', 'pending')
      .where((w) => w.or([w('lease_until', 'is', null), w('lease_until', '<', now)]))
      .returningAll()
      .execute();
    // The UPDATE returns rows in no promised order: keep the due order the worker chose.
    const order = new Map(ids.map((id, i) => [id, i]));
    leased.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
    if (leased.length) await alsoIn(trx, leased, at);
    return leased;
  });
  return rows.map(toDeliveryRecord);
}

/** Extend a lease we still hold; false when it was lost (expired and taken by another worker). */
export async function renewLease(db: Q, id: string, owner: string, until: Date): Promise<boolean> {
  const r = await db
    .updateTable('deliveries')
    .set({ lease_until: until.toISOString() })
    .where('id', '=', id)
    .where('lease_owner', '=', owner)
    .where('status', '=', 'pending')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** Record that attempt `n` of a delivery started; returns the attempt id. */
export async function startAttempt(db: Q, delivery: string, n: number, at = new Date()): Promise<string> {
  // Bookkeeping made durable by the attempt's finish (which syncs the WAL past it): no fsync here.
  if (db.isTransaction) return (await insertAttempts(db, [{ delivery, n }], at))[0];
  return (await relaxedTransaction(db as Kysely<Database>, (trx) => insertAttempts(trx, [{ delivery, n }], at)))[0];
}

/** Insert unfinished attempt rows; returns their ids in the same order. */
async function insertAttempts(trx: Q, attempts: { delivery: string; n: number }[], at: Date): Promise<string[]> {
  if (!attempts.length) return [];
  const rows = attempts.map((a) => ({
    id: newId(),
    delivery: a.delivery,
    n: a.n,
    started_at: at.toISOString(),
    finished_at: null,
    outcome: null,
    error: null,
    enhanced_status: null,
    next_attempt_at: null,
  }));
  await trx.insertInto('delivery_attempts').values(rows).execute();
  return rows.map((r) => r.id);
}

/** How one attempt ended, and what the delivery becomes. */
export interface AttemptResult {
  outcome: 'done' | 'transient' | 'permanent' | 'dead';
  /** done ⇒ done, transient ⇒ pending (nextAttemptAt), permanent ⇒ failed, dead ⇒ dead. */
  nextAttemptAt?: Date;
  error?: string;
  enhancedStatus?: string;
  receipt?: Receipt;
}

const STATUS_OF: Record<AttemptResult['outcome'], DeliveryStatus> = {
  done: 'done',
  transient: 'pending',
  permanent: 'failed',
  dead: 'dead',
};

/**
 * Finish an attempt: record it, release the lease, set the delivery's status and refresh the
 * message's. Fenced by the lease owner: a worker whose lease ran out and was retaken must not
 * overwrite the newer attempt's result. Returns false when the lease was lost.
 */
export async function finishAttempt(
  db: Db,
  d: { id: string; messageId: string; owner: string; attemptId: string },
  r: AttemptResult,
): Promise<boolean> {
  const now = new Date().toISOString();
  const error = r.error?.slice(0, 2000) ?? null;
  return transact(db, async (trx) => {
    if (db.dialect === 'postgres') {
      // Same lock order as refreshMessageStatus (message, then delivery): no deadlock.
      await trx.selectFrom('messages').select('id').where('id', '=', d.messageId).forUpdate().execute();
    }
    await trx
      .updateTable('delivery_attempts')
      .set({
        finished_at: now,
        outcome: r.outcome,
        error,
        enhanced_status: r.enhancedStatus ?? null,
        next_attempt_at: r.nextAttemptAt?.toISOString() ?? null,
      })
      .where('id', '=', d.attemptId)
      .execute();
    const u = await trx
      .updateTable('deliveries')
      .set({
        status: STATUS_OF[r.outcome],
        lease_owner: null,
        lease_until: null,
        updated_at: now,
        ...(r.nextAttemptAt ? { next_attempt_at: r.nextAttemptAt.toISOString() } : {}),
        ...(r.outcome === 'done' ? { receipt: JSON.stringify(r.receipt ?? { summary: 'done' }), last_error: null } : { last_error: error }),
      })
      .where('id', '=', d.id)
      .where('lease_owner', '=', d.owner)
      .executeTakeFirst();
    if (Number(u.numUpdatedRows) === 0) return false;
    await refreshMessageStatus(trx, db.dialect, d.messageId);
    return true;
  });
}

/** One delivery by id, or undefined. */
export async function getDelivery(db: Q, id: string): Promise<DeliveryRecord | undefined> {
  const r = await db.selectFrom('deliveries').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? toDeliveryRecord(r) : undefined;
}

/** A delivery's attempts, oldest first. */
export async function getAttempts(db: Q, deliveryId: string): Promise<AttemptRecord[]> {
  const rows = await db
    .selectFrom('delivery_attempts')
    .selectAll()
    .where('delivery', '=', deliveryId)
    .orderBy('id')
    .execute();
  return rows.map(toAttemptRecord);
}

/** Which deliveries: what the list, the console and a bulk replay filter by; every field narrows. */
export interface DeliveryMatch {
  status?: string;
  route?: string;
  /** The target kind (webhook, smtp, folder…). */
  target?: string;
  /** Where the delivery lands as its target names it (exact). */
  destination?: string;
  message?: string;
  /** A case-insensitive substring of the last error. */
  error?: string;
  /** Last changed (for a dead letter: when it died) at or after / before, ISO 8601. */
  since?: string;
  until?: string;
}

function likePattern(s: string): string {
  return `%${s.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** The one place a DeliveryMatch becomes SQL, so the list and a replay can never disagree. */
export function matchDeliveries<O>(q: SelectQueryBuilder<Database, 'deliveries', O>, f: DeliveryMatch): SelectQueryBuilder<Database, 'deliveries', O> {
  if (f.status) q = q.where('status', '=', f.status);
  if (f.route) q = q.where('route', '=', f.route);
  if (f.target) q = q.where('kind', '=', f.target);
  if (f.destination !== undefined) q = q.where('destination', '=', f.destination);
  if (f.message) q = q.where('message', '=', f.message);
  // SQLite has no default LIKE escape character; naming it works the same on both backends.
  if (f.error) q = q.where(sql<SqlBool>`lower(coalesce(last_error, '')) like ${likePattern(f.error)} escape '\\'`);
  // Stored times are toISOString() text: compare in the same shape ('…00Z' sorts after '…00.000Z').
  if (f.since) q = q.where('updated_at', '>=', new Date(f.since).toISOString());
  if (f.until) q = q.where('updated_at', '<', new Date(f.until).toISOString());
  return q;
}

export interface DeliveryFilter extends DeliveryMatch {
  /** Cursor: ids below this (newest first is not meaningful for hashed ids, so id order). */
  after?: string;
  limit: number;
}

/** Deliveries matching the filter, in id order; `after` is the cursor. */
export async function listDeliveries(db: Q, f: DeliveryFilter): Promise<DeliveryRecord[]> {
  let q = matchDeliveries(db.selectFrom('deliveries').selectAll(), f).orderBy('id').limit(f.limit);
  if (f.after) q = q.where('id', '>', f.after);
  return (await q.execute()).map(toDeliveryRecord);
}

/**
 * Replay a delivery by hand: pending again, due now, with a fresh attempt budget (the earlier
 * attempts stay in delivery_attempts). Returns the updated record, or undefined if unknown.
 */
export async function retryDelivery(db: Db, id: string, now = new Date()): Promise<DeliveryRecord | undefined> {
  return transact(db, async (trx) => {
    const row = await trx.selectFrom('deliveries').select(['message', 'status']).where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    // A replay tries every recipient not yet delivered again, refused ones too (the operator
    // may have fixed what refused them); those done stay done and get no second copy.
    await trx.deleteFrom('delivery_recipients').where('delivery', '=', id).where('status', '!=', 'done').execute();
    if (row.status === 'pending') {
      // Still in the queue (maybe leased right now): make it due now, but leave the lease and
      // the attempt count alone, or a second worker could run it beside the first.
      await trx
        .updateTable('deliveries')
        .set({ next_attempt_at: now.toISOString(), updated_at: now.toISOString() })
        .where('id', '=', id)
        .execute();
      return getDelivery(trx, id);
    }
    if (db.dialect === 'postgres') {
      await trx.selectFrom('messages').select('id').where('id', '=', row.message).forUpdate().execute();
    }
    await trx
      .updateTable('deliveries')
      .set({
        status: 'pending',
        attempts: 0,
        first_attempt_at: null,
        next_attempt_at: now.toISOString(),
        lease_owner: null,
        lease_until: null,
        updated_at: now.toISOString(),
      })
      .where('id', '=', id)
      .execute();
    await refreshMessageStatus(trx, db.dialect, row.message);
    return getDelivery(trx, id);
  });
}

/**
 * The earliest next_attempt_at of pending deliveries nobody holds a lease on, for a worker
 * deciding how long to sleep. Leased rows are left out: a row being attempted right now is
 * "due" in the past, and counting it would make an idle worker spin on the store.
 */
export async function nextDue(db: Q, now = new Date(), exclude: readonly RouteTarget[] = [], dueFrom?: string): Promise<Date | undefined> {
  const at = now.toISOString();
  let q = db
    .selectFrom('deliveries')
    .select((eb) => eb.fn.min('next_attempt_at').as('at'))
    .where('status', '=', 'pending')
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', at)]));
  // As in the lease: what is due before this was seen held back or leased.
  if (dueFrom) q = q.where('next_attempt_at', '>=', dueFrom);
  // Held back (paused, or its destination full): due, yet not ours to wait for.
  q = await holdBack(db, q, exclude);
  const r = await q.executeTakeFirst();
  return r?.at ? new Date(r.at as string) : undefined;
}

/** What earlier attempts of a delivery recorded per recipient (lower-case address → outcome). */
export async function readRecipientOutcomes(db: Q, delivery: string): Promise<Map<string, RecipientOutcome>> {
  const rows = await db.selectFrom('delivery_recipients').selectAll().where('delivery', '=', delivery).execute();
  return new Map(
    rows.map((r) => [
      r.recipient,
      { recipient: r.recipient, status: r.status as RecipientOutcome['status'], reply: r.reply, enhancedStatus: r.enhanced_status },
    ]),
  );
}

/** Record per-recipient outcomes of a delivery, durably (a recipient done is never sent to again). */
export async function recordRecipientOutcomes(db: Db, delivery: string, outcomes: RecipientOutcome[]): Promise<void> {
  if (!outcomes.length) return;
  const now = new Date().toISOString();
  const rows = [...new Map(outcomes.map((o) => [o.recipient.toLowerCase(), o])).values()].map((o) => ({
    delivery,
    recipient: o.recipient.toLowerCase(),
    status: o.status,
    reply: o.reply?.slice(0, 1000) ?? null,
    enhanced_status: o.enhancedStatus,
    updated_at: now,
  }));
  await transact(db, (trx) =>
    trx
      .insertInto('delivery_recipients')
      .values(rows)
      .onConflict((oc) =>
        oc.columns(['delivery', 'recipient']).doUpdateSet((eb) => ({
          status: eb.ref('excluded.status'),
          reply: eb.ref('excluded.reply'),
          enhanced_status: eb.ref('excluded.enhanced_status'),
          updated_at: eb.ref('excluded.updated_at'),
        })),
      )
      .execute(),
  );
}
