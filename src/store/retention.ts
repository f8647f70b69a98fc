import { sql, type RawBuilder, type SqlBool } from 'kysely';
import type { Logger } from 'pino';
import type { Metrics } from '../telemetry/metrics.js';
import { transact, type Db } from './db.js';
import type { Leases } from './leases.js';
import type { BlobStore } from './ports.js';
import { referencedBlobs, SWEEP_BATCH } from './sweep.js';

/** One set of limits; unset or 0: that limit is off. */
export interface RetentionLimits {
  maxAge?: number;
  maxMessages?: number;
  maxBytes?: number;
}

/** The top-level limits and the routes that set their own (keys they leave unset take the top-level value). */
export interface RetentionPolicy {
  defaults: RetentionLimits;
  routes: Record<string, RetentionLimits>;
}

/** What a purge removed (or, dry, would remove), in total and per route. */
export interface PurgeSummary {
  messages: number;
  /** Raw size of those messages. */
  bytes: number;
  oldest: string | null;
  newest: string | null;
}

export interface PurgeReport extends PurgeSummary {
  dryRun: boolean;
  /** Another node holds the retention lease: this run did nothing. */
  skipped?: boolean;
  /** Per route that delivered them; '' for messages no route took (a message several routes took is counted under each). */
  routes: Record<string, PurgeSummary>;
  /** Bytes of blobs no row names any more after the removal (given to the sweep). */
  blobBytesFreed: number;
  /** Blobs the sweep removed after the rows (older than its grace period; younger ones at a later sweep). */
  blobsRemoved: number;
  /** SQLite: pages given back to the file system by incremental vacuum. */
  pagesFreed: number;
}

/** Why routing marked a message it planned nothing for (routing/plan.ts NO_ROUTE): nothing to deliver. */
const NO_ROUTE = 'no route took any recipient';
/** The lease key: one node removes at a time (store/leases.ts). */
export const RETENTION_LEASE = 'retention';

const on = (n: number | undefined): n is number => typeof n === 'number' && n > 0;

/** A bucket of messages that share limits: the top level, or one route with its own retention. */
interface Bucket {
  /** undefined: the top-level bucket. */
  route?: string;
  limits: RetentionLimits;
}

/** Where in (received_at, id) order a bucket's limits begin to let messages go. */
interface Bound {
  member: RawBuilder<SqlBool>;
  /** Received before this: over maxAge. */
  cutoff?: string;
  /** This message and every older one of the bucket: over maxMessages or maxBytes. */
  over?: { at: string; id: string };
}

/**
 * Retention: remove kept messages the limits let go, in leased batches (one node at a time on
 * PostgreSQL), rows first in a durable transaction and then the blobs through the orphan sweep
 * of the BlobStore (rows first: a crash between leaves orphan blobs, which the next sweep
 * removes, never a row naming bytes that are gone), then the space back (SQLite incremental
 * vacuum; PostgreSQL's autovacuum does its own).
 *
 * A message goes only when it is finished: parsed and planned, every delivery done, failed or
 * dead (or none: no route took it, or an earlier copy took its deliveries), not pinned, not an
 * outbound draft or one still sending, not a group post held for moderation or approved and not
 * yet relayed. Documents, processes, work-package attachments and group posts name the blobs
 * they were made of themselves (store/sweep.ts REFS), so those bytes stay with them.
 */
export class Retention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<PurgeReport | undefined> | undefined;
  private readonly now: () => number;

  constructor(
    private readonly deps: {
      db: Db;
      blobs: BlobStore;
      leases: Leases;
      policy: RetentionPolicy;
      batchSize: number;
      /** The orphan sweep's grace period (store.sweep.grace). */
      graceMs: number;
      metrics?: Metrics;
      log?: Logger;
      now?: () => number;
    },
  ) {
    this.now = deps.now ?? Date.now;
    this.policy = deps.policy;
  }

  private policy: RetentionPolicy;

  /** The limits from now on (routes changed by a reload or through the API). */
  setPolicy(policy: RetentionPolicy): void {
    this.policy = policy;
  }

  /** Whether any limit is set anywhere: without one nothing is ever removed. */
  get enabled(): boolean {
    const any = (l: RetentionLimits) => on(l.maxAge) || on(l.maxMessages) || on(l.maxBytes);
    return any(this.policy.defaults) || Object.values(this.policy.routes).some((l) => any({ ...this.policy.defaults, ...defined(l) }));
  }

  /** Run now (in the background) and then every `intervalMs` (0: only now). */
  start(intervalMs: number): void {
    void this.tick();
    if (intervalMs > 0) {
      this.timer = setInterval(() => void this.tick(), intervalMs);
      this.timer.unref();
    }
  }

  /** One periodic run; a run still going is joined, not doubled. Never throws (logs). */
  tick(): Promise<PurgeReport | undefined> {
    this.running ??= (async () => {
      try {
        const r = await this.purge();
        if (r.messages) this.deps.log?.info({ messages: r.messages, bytes: r.bytes, blobBytesFreed: r.blobBytesFreed, blobs: r.blobsRemoved, pages: r.pagesFreed }, 'retention removed messages');
        return r;
      } catch (err) {
        this.deps.log?.warn({ err }, 'retention run failed; tried again at the next interval');
        return undefined;
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** Stop, and close the leases (their PostgreSQL connection). */
  async close(): Promise<void> {
    await this.stop();
    await this.deps.leases.close();
  }

  /**
   * Remove (or with dryRun, only count) what the limits let go. Takes the retention lease first;
   * when another node holds it, returns `skipped` at once: that node is doing the same work.
   */
  async purge(opts: { dryRun?: boolean } = {}): Promise<PurgeReport> {
    const report: PurgeReport = { dryRun: !!opts.dryRun, messages: 0, bytes: 0, oldest: null, newest: null, routes: {}, blobBytesFreed: 0, blobsRemoved: 0, pagesFreed: 0 };
    if (!this.enabled) return report;
    const lease = opts.dryRun ? undefined : await this.deps.leases.tryAcquire(RETENTION_LEASE);
    if (!opts.dryRun && !lease) return { ...report, skipped: true };
    try {
      const removable = await this.removable();
      if (opts.dryRun) await this.count(removable, report);
      else await this.remove(removable, report, lease!.signal);
    } finally {
      await lease?.release();
    }
    if (!opts.dryRun) this.deps.metrics?.retentionLastRun.set(this.now() / 1000);
    return report;
  }

  /** The condition "this message may go now", on `messages`, from the limits as of now. */
  private async removable(): Promise<RawBuilder<SqlBool>> {
    const { policy } = this;
    const own = Object.keys(policy.routes);
    const buckets: Bucket[] = [
      { limits: policy.defaults },
      ...own.map((route) => ({ route, limits: { ...policy.defaults, ...defined(policy.routes[route]) } })),
    ];
    const parts: RawBuilder<SqlBool>[] = [finished()];
    for (const b of buckets) {
      const bound = await this.bound(b, own);
      const marks: RawBuilder<SqlBool>[] = [];
      if (bound.cutoff) marks.push(sql<SqlBool>`messages.received_at < ${bound.cutoff}`);
      if (bound.over) {
        marks.push(sql<SqlBool>`(messages.received_at < ${bound.over.at} or (messages.received_at = ${bound.over.at} and messages.id <= ${bound.over.id}))`);
      }
      // Every bucket a message is in must let it go: the route that keeps longest wins.
      parts.push(marks.length ? sql<SqlBool>`(not ${bound.member} or ${sql.join(marks, sql` or `)})` : sql<SqlBool>`not ${bound.member}`);
    }
    return sql<SqlBool>`(${sql.join(parts, sql` and `)})`;
  }

  private async bound(b: Bucket, own: string[]): Promise<Bound> {
    const { db } = this.deps;
    const member =
      b.route !== undefined
        ? sql<SqlBool>`exists (select 1 from deliveries d where d.message = messages.id and d.route = ${b.route})`
        : own.length
          ? sql<SqlBool>`(not exists (select 1 from deliveries d where d.message = messages.id) or exists (select 1 from deliveries d where d.message = messages.id and d.route not in (${sql.join(own)})))`
          : sql<SqlBool>`1 = 1`;
    const out: Bound = { member };
    const { maxAge, maxMessages, maxBytes } = b.limits;
    if (on(maxAge)) out.cutoff = new Date(this.now() - maxAge).toISOString();
    if (on(maxMessages) || on(maxBytes)) {
      const over: RawBuilder<SqlBool>[] = [];
      if (on(maxMessages)) over.push(sql<SqlBool>`rn > ${maxMessages}`);
      if (on(maxBytes)) over.push(sql<SqlBool>`cum > ${maxBytes}`);
      // The newest message past a cap, counting newest first: it and everything older in the
      // bucket is over (row number and running sum only grow). Unremovable messages count too:
      // a cap is on what is kept, and what must stay takes room from what may go.
      const r = await sql<{ received_at: string; id: string }>`select received_at, id from (
          select messages.received_at, messages.id,
            row_number() over (order by messages.received_at desc, messages.id desc) as rn,
            sum(messages.size) over (order by messages.received_at desc, messages.id desc rows between unbounded preceding and current row) as cum
          from messages where ${member}
        ) t where ${sql.join(over, sql` or `)} order by received_at desc, id desc limit 1`.execute(db.kysely);
      const row = r.rows[0];
      if (row) out.over = { at: row.received_at, id: row.id };
    }
    return out;
  }

  /** The next removable messages, oldest first. */
  private async page(removable: RawBuilder<SqlBool>, limit: number, after?: { at: string; id: string }) {
    const from = after ? sql<SqlBool>`(messages.received_at > ${after.at} or (messages.received_at = ${after.at} and messages.id > ${after.id}))` : sql<SqlBool>`1 = 1`;
    const r = await sql<{ id: string; size: number | string; received_at: string; raw_sha256: string }>`select messages.id, messages.size, messages.received_at, messages.raw_sha256 from messages
      where ${removable} and ${from} order by messages.received_at, messages.id limit ${limit}`.execute(this.deps.db.kysely);
    return r.rows.map((x) => ({ ...x, size: Number(x.size) }));
  }

  /** Dry run: count what would go, per route, changing nothing. */
  private async count(removable: RawBuilder<SqlBool>, report: PurgeReport): Promise<void> {
    let after: { at: string; id: string } | undefined;
    for (;;) {
      const rows = await this.page(removable, this.deps.batchSize, after);
      if (!rows.length) return;
      await this.tally(rows, report);
      const last = rows[rows.length - 1];
      after = { at: last.received_at, id: last.id };
    }
  }

  /** The routes that delivered each of `ids` (read before the rows go: they go with the message). */
  private async routesOf(ids: string[]): Promise<Map<string, string[]>> {
    const routes = new Map<string, string[]>();
    for (let i = 0; i < ids.length; i += SWEEP_BATCH) {
      const got = await this.deps.db.kysely.selectFrom('deliveries').select(['message', 'route']).distinct().where('message', 'in', ids.slice(i, i + SWEEP_BATCH)).execute();
      for (const g of got) routes.set(g.message, [...(routes.get(g.message) ?? []), g.route]);
    }
    return routes;
  }

  private async tally(rows: { id: string; size: number; received_at: string }[], report: PurgeReport, known?: Map<string, string[]>): Promise<void> {
    const routes = known ?? (await this.routesOf(rows.map((r) => r.id)));
    for (const r of rows) {
      add(report, r);
      for (const route of routes.get(r.id) ?? ['']) add((report.routes[route] ??= { messages: 0, bytes: 0, oldest: null, newest: null }), r);
    }
  }

  /** Remove in batches while the lease holds; then the blobs, then the space. */
  private async remove(removable: RawBuilder<SqlBool>, report: PurgeReport, signal: AbortSignal): Promise<void> {
    const { db, metrics } = this.deps;
    for (;;) {
      if (signal.aborted) break;
      const rows = await this.page(removable, this.deps.batchSize);
      if (!rows.length) break;
      const ids = rows.map((r) => r.id);
      // The bytes these rows name, to tell afterwards which no row names any more.
      const blobs = new Map<string, number>(rows.map((r) => [r.raw_sha256, r.size]));
      const parts = await db.kysely.selectFrom('parts').select(['sha256', 'size']).where('message', 'in', ids).execute();
      for (const p of parts) blobs.set(p.sha256, Number(p.size));
      const routes = await this.routesOf(ids);
      // Durable before any blob goes: a row that came back after a crash must find its bytes.
      // The condition is checked again in the DELETE: a message pinned, or a delivery retried
      // by hand, since the page was read stays.
      const gone = await transact(db, async (trx) => {
        const r = await sql<{ id: string }>`delete from messages where messages.id in (${sql.join(ids)}) and ${removable} returning id`.execute(trx);
        return new Set(r.rows.map((x) => x.id));
      });
      await this.tally(rows.filter((r) => gone.has(r.id)), report, routes);
      metrics?.retentionRemoved.inc({ kind: 'message' }, gone.size);
      const hashes = [...blobs.keys()];
      const named = await referencedBlobs(db.kysely, hashes);
      let freed = 0;
      for (const h of hashes) if (!named.has(h)) freed += blobs.get(h) ?? 0;
      report.blobBytesFreed += freed;
      metrics?.retentionFreedBytes.inc(freed);
      if (rows.length < this.deps.batchSize) break;
    }
    if (!report.messages) return;
    // Blobs after rows, by the one orphan sweep (the BlobStore port: files, database, S3 alike).
    const swept = (await this.deps.blobs.sweep?.({ graceMs: this.deps.graceMs, db: db.kysely })) ?? { blobs: 0, staging: 0 };
    report.blobsRemoved = swept.blobs;
    metrics?.retentionRemoved.inc({ kind: 'blob' }, swept.blobs);
    report.pagesFreed = await giveSpaceBack(db);
  }
}

/**
 * SQLite: return free pages to the file system when the database was made with
 * auto_vacuum=INCREMENTAL (every database made since retention existed; older ones reuse their
 * free pages for new rows, and `postroom purge --vacuum` converts them). PostgreSQL: nothing
 * here; autovacuum makes the dead rows' space reusable, and VACUUM FULL is the operator's call.
 */
export async function giveSpaceBack(db: Db): Promise<number> {
  if (db.dialect !== 'sqlite' || !db.execToEnd) return 0;
  const mode = await sql<{ auto_vacuum: number }>`PRAGMA auto_vacuum`.execute(db.kysely);
  if (Number(mode.rows[0]?.auto_vacuum) !== 2) return 0;
  const before = await pageCount(db);
  // A bounded number of pages per statement: each holds the one connection (and the event
  // loop: better-sqlite3 is synchronous) while it moves pages, so SMTP answers in between.
  for (let free = await freelist(db); free > 0; ) {
    await db.execToEnd(`PRAGMA incremental_vacuum(${VACUUM_PAGES})`);
    await new Promise((r) => setImmediate(r));
    const left = await freelist(db);
    if (left >= free) break;
    free = left;
  }
  return Math.max(0, before - (await pageCount(db)));
}

/** Pages one incremental_vacuum statement gives back at most (4 KiB pages: 8 MiB). */
const VACUUM_PAGES = 2048;

async function freelist(db: Db): Promise<number> {
  const r = await sql<{ freelist_count: number }>`PRAGMA freelist_count`.execute(db.kysely);
  return Number(r.rows[0]?.freelist_count ?? 0);
}

/**
 * SQLite: turn incremental auto-vacuum on for a database made without it. Only VACUUM can
 * (it rewrites the whole file: it needs that much free disk and holds the write lock until
 * done), so it is the operator's step (`postroom purge --vacuum`), never a migration's.
 * Returns whether it ran.
 */
export async function convertToIncrementalVacuum(db: Db): Promise<boolean> {
  if (db.dialect !== 'sqlite') return false;
  const mode = await sql<{ auto_vacuum: number }>`PRAGMA auto_vacuum`.execute(db.kysely);
  if (Number(mode.rows[0]?.auto_vacuum) === 2) return false;
  await sql`PRAGMA auto_vacuum = INCREMENTAL`.execute(db.kysely);
  await sql`VACUUM`.execute(db.kysely);
  return true;
}

async function pageCount(db: Db): Promise<number> {
  const r = await sql<{ page_count: number }>`PRAGMA page_count`.execute(db.kysely);
  return Number(r.rows[0]?.page_count ?? 0);
}

/** Parsed and planned, nothing left to deliver, nothing holding it. */
function finished(): RawBuilder<SqlBool> {
  return sql<SqlBool>`(messages.pinned_at is null
    and messages.parsed_at is not null
    and messages.status not in ('draft', 'sending')
    and (messages.status not in ('received', 'raw') or messages.duplicate_of is not null or messages.error like ${`${NO_ROUTE}%`})
    and not exists (select 1 from deliveries d where d.message = messages.id and d.status not in ('done', 'failed', 'dead'))
    and not exists (select 1 from group_posts p where p.message = messages.id and p.status in ('held', 'approved')))`;
}

function add(s: PurgeSummary, r: { size: number; received_at: string }): void {
  s.messages++;
  s.bytes += r.size;
  if (!s.oldest || r.received_at < s.oldest) s.oldest = r.received_at;
  if (!s.newest || r.received_at > s.newest) s.newest = r.received_at;
}

/** The keys of `l` that are set (a route's unset key takes the top-level value). */
function defined(l: RetentionLimits | undefined): RetentionLimits {
  return Object.fromEntries(Object.entries(l ?? {}).filter(([, v]) => v !== undefined));
}
