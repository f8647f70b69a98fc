import { sql, type Kysely, type RawBuilder, type SqlBool } from 'kysely';
import type { Logger } from 'pino';
import type { BlobStore } from './ports.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Database } from './schema.js';

/** Every column that names a blob: a blob none of them names is an orphan. */
export const REFS = [
  ['messages', 'raw_sha256'],
  ['parts', 'sha256'],
  ['documents', 'sha256'],
  ['processes', 'input_sha256'],
  ['tracker_attachments', 'sha256'],
  // A group post's own copy of the message it was made of (migration 0025): it outlives the message.
  ['group_posts', 'raw_sha256'],
] as const;

/** Hashes a sweep looks at per query (IN lists stay well under both databases' parameter limits). */
export const SWEEP_BATCH = 500;

/** Which of `hashes` some row points at (by index: migration 0012). */
export async function referencedBlobs(db: Kysely<Database>, hashes: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  if (!hashes.length) return out;
  for (const [table, column] of REFS) {
    const rows = await sql<{ h: string }>`select distinct ${sql.ref(column)} as h from ${sql.table(table)} where ${sql.ref(column)} in (${sql.join(hashes)})`.execute(db);
    for (const r of rows.rows) out.add(r.h);
  }
  return out;
}

/** The condition "no row names blobs.sha256", for a statement on `blobs` that must decide it atomically. */
export function unreferencedBlob(): RawBuilder<SqlBool> {
  return sql<SqlBool>`${sql.join(
    REFS.map(([table, column]) => sql`not exists (select 1 from ${sql.table(table)} where ${sql.ref(`${table}.${column}`)} = blobs.sha256)`),
    sql` and `,
  )}`;
}

/** What one sweep removed. */
export interface SweepCounts {
  /** Blob files or rows no row pointed at, older than the grace period. */
  blobs: number;
  /** Staging files of processes that died (or older than STAGING_MAX_AGE). */
  staging: number;
}

export interface SweepOptions {
  /** Blobs younger than this are left alone whatever points at them: an intake may be about to commit its row. */
  graceMs: number;
  db: Kysely<Database>;
}

/**
 * Leftovers of faults, removed at start and every `intervalMs`: blobs renamed into place (or
 * inserted) whose transaction then failed, which no row will ever point at, and staging files
 * of a process killed while a message streamed in. Each sweep logs one line and counts what it
 * removed in postroom_sweep_removed_total{kind}.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SweepCounts> | undefined;

  constructor(
    private readonly deps: { db: Kysely<Database>; blobs: BlobStore; log: Logger; metrics: Metrics; graceMs: number; intervalMs: number },
  ) {}

  /** Sweep now (in the background) and then every interval. */
  start(): void {
    void this.run();
    if (this.deps.intervalMs > 0) {
      this.timer = setInterval(() => void this.run(), this.deps.intervalMs);
      this.timer.unref();
    }
  }

  /** One sweep; a sweep already running is joined, not doubled. Never throws (logs). */
  run(): Promise<SweepCounts> {
    this.running ??= (async () => {
      const { blobs, log, metrics } = this.deps;
      try {
        const counts = (await blobs.sweep?.({ graceMs: this.deps.graceMs, db: this.deps.db })) ?? { blobs: 0, staging: 0 };
        metrics.sweepRemoved.inc({ kind: 'blob' }, counts.blobs);
        metrics.sweepRemoved.inc({ kind: 'staging' }, counts.staging);
        if (counts.blobs || counts.staging) log.info(counts, 'removed leftovers of failed intakes (orphan blobs, staging files of dead processes)');
        return counts;
      } catch (err) {
        log.warn({ err }, 'sweeping leftovers failed; tried again at the next interval');
        return { blobs: 0, staging: 0 };
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
}
