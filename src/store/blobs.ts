import { createReadStream } from 'node:fs';
import { link, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Kysely, Transaction } from 'kysely';
import type { BlobStore, ByteRange, StagedBlob } from './ports.js';
import { MailError, mailError } from '../core/errors.js';
import { makeDirs } from '../core/make-dirs.js';
import type { Database } from './schema.js';
import { prepareStagingDir, stageStream, sweepStagingDir } from './stage.js';
import { referencedBlobs, SWEEP_BATCH } from './sweep.js';

/** Blobs up to this size are kept in the database by default (see FsBlobStore). */
export const INLINE_LIMIT = 128 * 1024;

/**
 * Blobs as files under DIR/ab/<sha256>. A blob is written to DIR/tmp, fsynced, renamed into
 * place, and its directory fsynced, so a crash leaves either nothing or the whole file.
 *
 * Small blobs (up to `inlineLimit`, given an `inline` store) go into the database instead,
 * inside the transaction that commits their message row: a batch of small messages then costs
 * one WAL fsync rather than a file fsync, a rename and a directory fsync each — the group
 * commit databases do. Reads look in the database first, then in the file tree.
 */
export class FsBlobStore implements BlobStore {
  private readonly tmpDir: string;
  private ready: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    private readonly inline?: { store: BlobStore; limit: number },
  ) {
    this.tmpDir = path.join(dir, 'tmp');
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      await prepareStagingDir(this.tmpDir);
      const hex = '0123456789abcdef';
      await Promise.all(
        [...hex].flatMap((a) => [...hex].map((b) => makeDirs(path.join(this.dir, a + b)))),
      );
    })();
    return this.ready;
  }

  /** Path of a blob by hash. */
  pathOf(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw mailError('NOT_FOUND', 'No such blob');
    return path.join(this.dir, sha256.slice(0, 2), sha256);
  }

  async stage(
    src: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    opts: { maxSize?: number; prefix?: Uint8Array; sha256?: string } = {},
  ): Promise<StagedBlob> {
    await this.init();
    return stageStream(this.tmpDir, src, { ...opts, inlineLimit: this.inline?.limit ?? 0, fsync: true });
  }

  async commit(staged: StagedBlob[], trx?: Transaction<Database> | Kysely<Database>): Promise<void> {
    const inMemory = staged.filter((s) => s.data);
    if (inMemory.length) {
      if (!this.inline || !trx) throw new Error('FsBlobStore: an in-memory blob needs the inline store and a transaction');
      await this.inline.store.commit(inMemory, trx);
    }
    const files = staged.filter((s) => s.tempPath);
    // Same content already kept: renaming over it is harmless and atomic.
    await Promise.all(files.map((s) => rename(s.tempPath!, this.pathOf(s.sha256))));
    // One fsync per directory for the whole batch makes every rename in it durable.
    const dirs = new Set(files.map((s) => path.dirname(this.pathOf(s.sha256))));
    await Promise.all([...dirs].map((d) => fsyncDir(d)));
  }

  async settle(staged: StagedBlob[]): Promise<StagedBlob[]> {
    await this.commit(staged.filter((s) => s.tempPath));
    return staged.filter((s) => s.data);
  }

  async discard(staged: StagedBlob): Promise<void> {
    if (staged.tempPath) await unlink(staged.tempPath).catch(() => {});
  }

  async open(sha256: string, range?: ByteRange): Promise<Readable> {
    const p = this.pathOf(sha256);
    // The database first: most blobs are small and live there, and a query costs less than a
    // stat() that fails (an fs round trip plus an ENOENT error object) for every one of them.
    if (this.inline) {
      try {
        return await this.inline.store.open(sha256, range);
      } catch (err) {
        if (!(err instanceof MailError && err.code === 'NOT_FOUND')) throw err;
      }
    }
    // 64 KiB reads (fs streams' default), not 256 KiB: the parser queues up to 16 chunks in
    // each of its object-mode streams, so the chunk size sets how much of a large message it
    // holds at once (a 200 MiB message parsed ~10 MiB higher with 256 KiB chunks).
    if (await this.hasFile(sha256)) return createReadStream(p, { highWaterMark: 64 * 1024, ...(range ?? {}) });
    throw mailError('NOT_FOUND', 'No such blob');
  }

  async has(sha256: string): Promise<boolean> {
    return (await this.hasFile(sha256)) || ((await this.inline?.store.has(sha256)) ?? false);
  }

  /**
   * Remove blob files no row names once older than the grace period (their transaction failed
   * after the rename, or the process died between), the staging files of dead processes, and
   * the same in the inline store. A candidate is moved aside before it is unlinked: if an
   * intake renamed the same bytes into place since we looked (a new inode, a young mtime), the
   * file is put back, so a row about to be committed never loses its bytes.
   */
  async sweep(opts: { graceMs: number; db: Kysely<Database> }): Promise<{ blobs: number; staging: number }> {
    const inner = (await this.inline?.store.sweep?.(opts)) ?? { blobs: 0, staging: 0 };
    const staging = await sweepStagingDir(this.tmpDir);
    const cutoff = Date.now() - opts.graceMs;
    let blobs = 0;
    const hex = '0123456789abcdef';
    for (const sub of [...hex].flatMap((a) => [...hex].map((b) => a + b))) {
      const names = await readdir(path.join(this.dir, sub)).catch(() => [] as string[]);
      const old: { sha256: string; ino: number; mtimeMs: number }[] = [];
      for (const name of names) {
        if (!/^[0-9a-f]{64}$/.test(name)) continue;
        const st = await stat(path.join(this.dir, sub, name)).catch(() => undefined);
        if (st && st.mtimeMs < cutoff) old.push({ sha256: name, ino: st.ino, mtimeMs: st.mtimeMs });
      }
      for (let i = 0; i < old.length; i += SWEEP_BATCH) {
        const batch = old.slice(i, i + SWEEP_BATCH);
        const named = await referencedBlobs(opts.db, batch.map((c) => c.sha256));
        for (const c of batch) if (!named.has(c.sha256) && (await this.removeOrphan(c))) blobs++;
      }
    }
    return { blobs: blobs + inner.blobs, staging: staging + inner.staging };
  }

  private async removeOrphan(c: { sha256: string; ino: number; mtimeMs: number }): Promise<boolean> {
    const p = this.pathOf(c.sha256);
    // Named after our pid: a staging sweep (ours or a pipe's) leaves it to us.
    const aside = path.join(this.tmpDir, `p${process.pid}-sweep-${c.sha256}`);
    try {
      await rename(p, aside);
    } catch {
      return false;
    }
    const st = await stat(aside).catch(() => undefined);
    if (!st || st.ino !== c.ino || st.mtimeMs !== c.mtimeMs) {
      // Not the file we judged: an intake put these bytes in place meanwhile. Any copy of
      // content-addressed bytes is right, so EEXIST (another copy is there again) is fine too.
      await link(aside, p).catch(() => {});
      await unlink(aside).catch(() => {});
      return false;
    }
    await unlink(aside);
    return true;
  }

  /** Whether the file tree holds the blob (not looking in the database). */
  async hasFile(sha256: string): Promise<boolean> {
    try {
      await stat(this.pathOf(sha256));
      return true;
    } catch {
      return false;
    }
  }
}

/** fsync a directory so the names created in it survive a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fd = await open(dir, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}
