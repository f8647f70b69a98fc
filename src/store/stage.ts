import { createHash, randomBytes } from 'node:crypto';
import { open, readdir, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { mailError } from '../core/errors.js';
import { makeDirs } from '../core/make-dirs.js';
import type { StagedBlob } from './ports.js';
import { streamedBytes } from '../core/stream-gc.js';
import { processAlive } from '../core/process-alive.js';

export interface StageOptions {
  /** Past this many bytes: TOO_LARGE (552 5.3.4), and nothing is kept. */
  maxSize?: number;
  /** Bytes to put before the stream's. */
  prefix?: Uint8Array;
  /** Blobs up to this size stay in memory (`data`); 0 puts every blob in a file. */
  inlineLimit: number;
  /** fsync the temporary file before returning (the file store needs it; the DB store does not). */
  fsync: boolean;
  /** The bytes' sha256, already computed in this process (see BlobStore.stage): not hashed again. */
  sha256?: string;
}

// Writes are gathered to this size: SMTP hands us chunks of ~64 KiB or less.
const WRITE_BATCH = 256 * 1024;

// Past this many pieces a batch is joined before it is written (one writev takes at most 1024).
const WRITEV_MAX = 64;

/**
 * Receive a stream once: hash it, count it, enforce maxSize, and keep it in memory while it
 * fits inlineLimit, spilling to a temporary file in `dir` past that. One function for every
 * blob store, so size limits and hashing behave the same whatever the store.
 */
export async function stageStream(
  dir: string,
  src: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  opts: StageOptions,
): Promise<StagedBlob> {
  const hash = opts.sha256 ? undefined : createHash('sha256');
  let size = 0;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let fd: FileHandle | undefined;
  let tempPath: string | undefined;

  const flush = async () => {
    if (!pendingBytes) return;
    if (!fd) {
      tempPath = stagingPath(dir);
      fd = await open(tempPath, 'wx', 0o640);
    }
    // The pieces as they came (writev), not joined into a new buffer: a large message would
    // otherwise allocate its size once more, and freshly allocated Buffers are what holds the
    // process's memory up while one streams (see core/stream-gc.ts).
    let bufs = pending.length > WRITEV_MAX ? [Buffer.concat(pending, pendingBytes)] : pending;
    let left = pendingBytes;
    pending = [];
    pendingBytes = 0;
    for (;;) {
      const { bytesWritten } = await fd.writev(bufs);
      left -= bytesWritten;
      if (left <= 0) return;
      bufs = unwritten(bufs, bytesWritten);
    }
  };
  const add = async (chunk: Uint8Array) => {
    size += chunk.length;
    streamedBytes(chunk.length, size);
    if (opts.maxSize !== undefined && size > opts.maxSize) throw mailError('TOO_LARGE');
    hash?.update(chunk);
    pending.push(chunk);
    pendingBytes += chunk.length;
    // In memory while the whole blob may still fit inline; past that, written in WRITE_BATCH pieces.
    if (size > opts.inlineLimit && pendingBytes >= WRITE_BATCH) await flush();
  };

  try {
    if (opts.prefix?.length) await add(opts.prefix);
    for await (const chunk of src) await add(chunk);
    const sha256 = hash ? hash.digest('hex') : opts.sha256!;
    if (size <= opts.inlineLimit) {
      return { sha256, size, data: pending.length === 1 ? Buffer.from(pending[0]) : Buffer.concat(pending, pendingBytes) };
    }
    await flush();
    if (!fd) {
      // An empty blob with inlineLimit 0: still a file, like every other.
      tempPath = stagingPath(dir);
      fd = await open(tempPath, 'wx', 0o640);
    }
    if (opts.fsync) await fd.sync();
    await fd.close();
    fd = undefined;
    return { sha256, size, tempPath };
  } catch (err) {
    await fd?.close().catch(() => {});
    if (tempPath) await unlink(tempPath).catch(() => {});
    throw err;
  }
}

/** What a short writev left of `bufs` after its first `written` bytes. */
function unwritten(bufs: Uint8Array[], written: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  for (const b of bufs) {
    if (written >= b.length) {
      written -= b.length;
      continue;
    }
    rest.push(written ? b.subarray(written) : b);
    written = 0;
  }
  return rest;
}

/**
 * A new staging file's name: the writing process's pid first, so a sweep can tell the files of
 * a process that died (kill -9 during DATA) from those still being written by a live one
 * (`postroom deliver` stages into the same directory as the server).
 */
function stagingPath(dir: string): string {
  return path.join(dir, `p${process.pid}-${Date.now()}-${randomBytes(8).toString('hex')}`);
}

/** Past this age a staging file is a leftover whoever wrote it (a pid may have been reused). */
export const STAGING_MAX_AGE = 3_600_000;

/**
 * Remove staging files no live process holds: those named after a pid that no longer runs, and
 * any older than `maxAge` (names from before pids were recorded, a reused pid). Returns how many.
 */
export async function sweepStagingDir(dir: string, maxAge = STAGING_MAX_AGE): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  const cutoff = Date.now() - maxAge;
  let removed = 0;
  for (const name of names) {
    const p = path.join(dir, name);
    const pid = /^p(\d+)-/.exec(name)?.[1];
    const dead = pid !== undefined && !processAlive(Number(pid));
    const st = dead ? undefined : await stat(p).catch(() => undefined);
    if (dead || (st && st.mtimeMs < cutoff)) {
      await rm(p, { force: true, recursive: true });
      removed++;
    }
  }
  return removed;
}

/**
 * Create `dir`. Leftovers of processes that died are removed by the server's sweep (at start
 * and periodically, counted in a metric: store/sweep.ts), not here at the first intake.
 */
export async function prepareStagingDir(dir: string): Promise<void> {
  await makeDirs(dir);
}
