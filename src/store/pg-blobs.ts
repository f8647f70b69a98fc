import { open, unlink } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { Kysely, Transaction } from 'kysely';
import { mailError } from '../core/errors.js';
import type { BlobStore, ByteRange, StagedBlob } from './ports.js';
import { prepareStagingDir, stageStream, sweepStagingDir } from './stage.js';
import { SWEEP_BATCH, unreferencedBlob } from './sweep.js';
import type { Database } from './schema.js';

type Q = Kysely<Database> | Transaction<Database>;

/** Bytes per row of blob_chunks: small enough to stream, large enough to keep rows few. */
export const CHUNK_SIZE = 1024 * 1024;
/** Single-chunk blobs are inserted together, up to this many bytes per statement. */
const BATCH_BYTES = 4 * CHUNK_SIZE;
/** Rows per statement: PostgreSQL takes at most 65,535 bind parameters, SQLite 32,766. */
const MAX_ROWS = 1000;

/**
 * Blobs kept in the database (tables `blobs` + `blob_chunks`), so that every node sharing a
 * PostgreSQL database sees every message without a shared file system. Written with plain
 * Kysely, so it runs on SQLite too (handy for one-file backups, and for testing both runs).
 *
 * Durability comes from the database commit, which is also the message row's commit: `commit`
 * inserts into the caller's transaction, so a row never points at bytes that are not kept.
 */
export class DbBlobStore implements BlobStore {
  private ready: Promise<void> | undefined;

  /** `stagingDir` holds bytes while a message streams in (not fsynced: the commit is what counts). */
  constructor(
    readonly db: Kysely<Database>,
    readonly stagingDir: string,
  ) {}

  private init(): Promise<void> {
    this.ready ??= prepareStagingDir(this.stagingDir);
    return this.ready;
  }

  async stage(
    src: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    opts: { maxSize?: number; prefix?: Uint8Array; sha256?: string } = {},
  ): Promise<StagedBlob> {
    await this.init();
    // Up to one chunk in memory; larger in a temp file, so a 200 MiB message never sits in the
    // heap while it streams. No fsync: the database commit is what makes the bytes durable.
    return stageStream(this.stagingDir, src, { ...opts, inlineLimit: CHUNK_SIZE, fsync: false });
  }

  async commit(staged: StagedBlob[], q: Transaction<Database> | Kysely<Database>): Promise<void> {
    if (!staged.length) return;
    if (q.isTransaction) await this.insert(staged, q);
    else await q.transaction().execute((trx) => this.insert(staged, trx));
    // The bytes are in the transaction now; if it rolls back the caller refuses the message anyway.
    await Promise.all(staged.map((s) => (s.tempPath ? unlink(s.tempPath).catch(() => {}) : undefined)));
  }

  private async insert(staged: StagedBlob[], trx: Q): Promise<void> {
    // One row per hash, in hash order: two nodes committing the same blobs take the unique-index
    // locks in the same order, so they wait for each other instead of deadlocking.
    const byHash = new Map<string, StagedBlob>();
    for (const s of staged) byHash.set(s.sha256, s);
    const unique = [...byHash.values()].sort((a, b) => (a.sha256 < b.sha256 ? -1 : 1));
    const now = new Date().toISOString();
    const fresh = await insertBlobRows(trx, unique, now);
    const existing = unique.filter((s) => !fresh.has(s.sha256)).map((s) => s.sha256);
    if (existing.length) {
      // The sweep deletes blobs older than its grace period that no committed row names: an old
      // orphan with these very bytes may be one, and our row is not committed yet. Touching it
      // makes it young and (PostgreSQL) row-locks it until we commit, so the sweep's DELETE waits
      // and then finds it young. One the sweep removed since our insert is inserted again.
      const touched = new Set<string>();
      for (let i = 0; i < existing.length; i += MAX_ROWS) {
        const rows = await trx.updateTable('blobs').set({ created_at: now }).where('sha256', 'in', existing.slice(i, i + MAX_ROWS)).returning('sha256').execute();
        for (const r of rows) touched.add(r.sha256);
      }
      const lost = unique.filter((s) => !fresh.has(s.sha256) && !touched.has(s.sha256));
      for (const h of await insertBlobRows(trx, lost, now)) fresh.add(h);
    }
    let rows: { sha256: string; seq: number; data: Uint8Array }[] = [];
    let rowBytes = 0;
    const flush = async () => {
      if (rows.length) await trx.insertInto('blob_chunks').values(rows).execute();
      rows = [];
      rowBytes = 0;
    };
    for (const s of unique) {
      if (!fresh.has(s.sha256)) continue;
      if (s.size <= CHUNK_SIZE) {
        rows.push({ sha256: s.sha256, seq: 0, data: s.data ?? (await readChunk(s.tempPath!, 0, s.size)) });
        rowBytes += s.size;
        if (rowBytes >= BATCH_BYTES || rows.length >= MAX_ROWS) await flush();
        continue;
      }
      for (let seq = 0; seq * CHUNK_SIZE < s.size; seq++) {
        const len = Math.min(CHUNK_SIZE, s.size - seq * CHUNK_SIZE);
        const data = s.data
          ? s.data.subarray(seq * CHUNK_SIZE, seq * CHUNK_SIZE + len)
          : await readChunk(s.tempPath!, seq * CHUNK_SIZE, len);
        await trx.insertInto('blob_chunks').values({ sha256: s.sha256, seq, data }).execute();
      }
    }
    await flush();
  }

  /** Every blob goes into the database, so every one waits for the caller's transaction. */
  async settle(staged: StagedBlob[]): Promise<StagedBlob[]> {
    return staged;
  }

  async discard(staged: StagedBlob): Promise<void> {
    if (staged.tempPath) await unlink(staged.tempPath).catch(() => {});
  }

  async open(sha256: string, range?: ByteRange): Promise<Readable> {
    // The size and the first chunk wanted in one round trip: most blobs are a single chunk.
    // Every chunk but a blob's last holds CHUNK_SIZE bytes, so a range starts at a known chunk.
    const firstSeq = range ? Math.floor(range.start / CHUNK_SIZE) : 0;
    const blob = await this.db
      .selectFrom('blobs')
      .leftJoin('blob_chunks', (j) => j.onRef('blob_chunks.sha256', '=', 'blobs.sha256').on('blob_chunks.seq', '=', firstSeq))
      .select(['blobs.size', 'blob_chunks.data'])
      .where('blobs.sha256', '=', sha256)
      .executeTakeFirst();
    if (!blob) throw mailError('NOT_FOUND', 'No such blob');
    const db = this.db;
    const size = Number(blob.size);
    const first = blob.data;
    const start = range?.start ?? 0;
    const end = Math.min(range?.end ?? size - 1, size - 1);
    // One chunk per query, fetched as the reader asks: a large blob never sits whole in memory.
    async function* chunks(): AsyncGenerator<Buffer> {
      let pos = firstSeq * CHUNK_SIZE;
      for (let seq = firstSeq; pos <= end; seq++) {
        const data =
          seq === firstSeq
            ? first
            : (await db.selectFrom('blob_chunks').select('data').where('sha256', '=', sha256).where('seq', '=', seq).executeTakeFirst())?.data;
        if (!data) throw new Error(`blob ${sha256} is missing chunk ${seq}`);
        const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
        const from = Math.max(0, start - pos);
        const to = Math.min(buf.length, end + 1 - pos);
        pos += buf.length;
        if (!buf.length) break;
        yield from === 0 && to === buf.length ? buf : buf.subarray(from, to);
      }
      if (!range && pos !== size) throw new Error(`blob ${sha256} has ${pos} bytes, expected ${size}`);
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  /** The blob's size, or undefined when the database does not hold it. */
  async size(sha256: string): Promise<number | undefined> {
    const r = await this.db.selectFrom('blobs').select('size').where('sha256', '=', sha256).executeTakeFirst();
    return r ? Number(r.size) : undefined;
  }

  async has(sha256: string): Promise<boolean> {
    const r = await this.db.selectFrom('blobs').select('sha256').where('sha256', '=', sha256).executeTakeFirst();
    return !!r;
  }

  /**
   * Delete blobs older than the grace period that no row names, a batch at a time. The check
   * and the delete are one statement: on SQLite nothing writes between them; on PostgreSQL an
   * intake committing the same bytes has touched the row (see insert), so the delete waits for
   * it and then skips it.
   */
  async sweep(opts: { graceMs: number }): Promise<{ blobs: number; staging: number }> {
    const staging = await sweepStagingDir(this.stagingDir);
    const cutoff = new Date(Date.now() - opts.graceMs).toISOString();
    let blobs = 0;
    let after = '';
    for (;;) {
      const batch = (
        await this.db.selectFrom('blobs').select('sha256').where('created_at', '<', cutoff).where('sha256', '>', after).orderBy('sha256').limit(SWEEP_BATCH).execute()
      ).map((r) => r.sha256);
      if (!batch.length) break;
      after = batch[batch.length - 1];
      blobs += await this.db.transaction().execute(async (trx) => {
        const gone = await trx
          .deleteFrom('blobs')
          .where('sha256', 'in', batch)
          .where('created_at', '<', cutoff)
          .where(unreferencedBlob())
          .returning('sha256')
          .execute();
        if (gone.length) await trx.deleteFrom('blob_chunks').where('sha256', 'in', gone.map((g) => g.sha256)).execute();
        return gone.length;
      });
    }
    return { blobs, staging };
  }
}

/**
 * Insert `blobs` rows; returns the hashes inserted. ON CONFLICT DO NOTHING: the same content
 * kept before (or by another node right now: the insert waits for that transaction) is kept
 * once. Only the hashes inserted get chunks.
 */
async function insertBlobRows(trx: Q, staged: StagedBlob[], now: string): Promise<Set<string>> {
  const fresh = new Set<string>();
  for (let i = 0; i < staged.length; i += MAX_ROWS) {
    const inserted = await trx
      .insertInto('blobs')
      .values(staged.slice(i, i + MAX_ROWS).map((s) => ({ sha256: s.sha256, size: s.size, created_at: now })))
      .onConflict((oc) => oc.column('sha256').doNothing())
      .returning('sha256')
      .execute();
    for (const r of inserted) fresh.add(r.sha256);
  }
  return fresh;
}

/** Read `len` bytes at `pos` of a file. */
async function readChunk(file: string, pos: number, len: number): Promise<Buffer> {
  const fd = await open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(len);
    let off = 0;
    while (off < len) {
      const { bytesRead } = await fd.read(buf, off, len - off, pos + off);
      if (!bytesRead) throw new Error(`staged blob ${file} is shorter than recorded`);
      off += bytesRead;
    }
    return buf;
  } finally {
    await fd.close();
  }
}
