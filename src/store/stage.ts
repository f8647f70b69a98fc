import { createHash, randomBytes } from 'node:crypto';
import { open, readdir, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { mailError } from '../core/errors.js';
import { makeDirs } from '../core/make-dirs.js';
import type { StagedBlob } from '../core/ports.js';
import { streamedBytes } from '../core/stream-gc.js';

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
      tempPath = path.join(dir, `${Date.now()}-${randomBytes(8).toString('hex')}`);
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
      tempPath = path.join(dir, `${Date.now()}-${randomBytes(8).toString('hex')}`);
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
 * Create `dir` and remove staging leftovers older than an hour: a crash left them, and they
 * were never acknowledged. Only old ones: another process (`postroom deliver`) may be staging
 * into the same directory right now.
 */
export async function prepareStagingDir(dir: string): Promise<void> {
  await makeDirs(dir);
  const cutoff = Date.now() - 3_600_000;
  for (const name of await readdir(dir)) {
    const p = path.join(dir, name);
    const st = await stat(p).catch(() => undefined);
    if (st && st.mtimeMs < cutoff) await rm(p, { force: true });
  }
}
