import { createReadStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import type { Kysely, Transaction } from 'kysely';
import { MailError, mailError } from '../core/errors.js';
import type { BlobStore, ByteRange, StagedBlob } from './ports.js';
import type { Database } from './schema.js';
import { prepareStagingDir, stageStream, sweepStagingDir } from './stage.js';
import { referencedBlobs, SWEEP_BATCH } from './sweep.js';

/** Where the S3 store puts blobs (config `store.s3`); credentials come from the environment only. */
export interface S3Location {
  /** https://s3.eu-west-1.amazonaws.com, http://minio:9000, …; unset: AWS's endpoint for the region. */
  endpoint?: string;
  bucket: string;
  region: string;
  /** Key prefix, without a trailing slash ('' for none). */
  prefix: string;
  /** bucket in the path (MinIO, Ceph RGW, Garage, s3rver) rather than in the host name (AWS). */
  forcePathStyle: boolean;
}

/**
 * Part size of a multipart upload. Upload holds `queueSize` parts in memory at once, so a 200 MiB
 * message costs 2 × 8 MiB of buffers, not its size; 8 MiB × 10,000 parts (S3's limit) is 80 GB.
 */
export const PART_SIZE = 8 * 1024 * 1024;
const QUEUE_SIZE = 2;
/** Uploads of one batch at once. */
const PARALLEL_UPLOADS = 4;

/**
 * The AWS SDK, loaded when an S3 store is first used: loading it costs ~0.16 s and ~30 MiB,
 * which every process (each `postroom deliver` from an MTA's pipe among them) would otherwise
 * pay whatever store it uses.
 */
let sdk: Promise<{ s3: typeof import('@aws-sdk/client-s3'); Upload: typeof import('@aws-sdk/lib-storage').Upload }> | undefined;
export function loadS3Sdk() {
  // The SDK warns on stderr, once per process, that its releases after January 2027 want Node 22.
  // Postroom supports Node 20 (package.json engines), and stderr of `postroom deliver` is the
  // text an MTA puts in its bounce (pipe(8)): an operator's own setting still wins.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return (sdk ??= Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]).then(([s3, storage]) => ({ s3, Upload: storage.Upload })));
}

/**
 * The S3 client for a location. Checksums only WHEN_REQUIRED: since 3.729 the SDK adds CRC32
 * trailers (aws-chunked bodies) to every upload by default, which MinIO before 2025, Ceph RGW,
 * Garage, s3rver and others reject or mis-store; the bytes are content-addressed already, and
 * each upload is confirmed by size before its row commits (the migration re-hashes what it copied).
 */
export async function s3Client(loc: S3Location): Promise<S3Client> {
  const { s3 } = await loadS3Sdk();
  const cfg: S3ClientConfig = {
    region: loc.region,
    forcePathStyle: loc.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // An unreachable endpoint fails the intake (451, the sender retries) in seconds, not after
    // the SMTP client's own timeout; 3 attempts with the SDK's backoff ride over a blip.
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 120_000 },
  };
  if (loc.endpoint) cfg.endpoint = loc.endpoint;
  return new s3.S3Client(cfg);
}

/**
 * Blobs as objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Cloudflare R2, Garage),
 * under content-addressed keys PREFIX/ab/cd/<sha256>, so every node sharing the bucket (and one
 * PostgreSQL database) sees every message without a shared file system or blobs in the database.
 *
 * Small blobs (up to `inline.limit`) go into the database instead, in the transaction of their
 * row, as FsBlobStore does: an object PUT per 2 KiB part would cost a round trip each (and a
 * request fee on AWS) where the batch's commit costs one.
 *
 * Accepted means kept: larger blobs are staged to a temporary file (never whole in memory),
 * uploaded in `settle` (multipart past PART_SIZE, streamed from the file) and confirmed with a
 * HeadObject whose size must match, all before the caller's transaction; a failure there throws
 * OBJECT_STORE_FAILED (451 4.3.0) and no row is written. An upload whose row then fails to
 * commit leaves an orphan object, which `sweep` removes after the grace period.
 */
export class S3BlobStore implements BlobStore {
  private ready: Promise<void> | undefined;
  private readonly clientP: Promise<S3Client>;

  constructor(
    readonly loc: S3Location,
    /** Holds bytes while a message streams in; not fsynced (the confirmed upload is what counts). */
    readonly stagingDir: string,
    private readonly inline: { store: BlobStore; limit: number },
    client?: S3Client,
  ) {
    this.clientP = client ? Promise.resolve(client) : s3Client(loc);
    // Awaited by every use; a failed SDK load is reported there, not as an unhandled rejection here.
    this.clientP.catch(() => {});
  }

  /** The SDK client (once the SDK is loaded). */
  client(): Promise<S3Client> {
    return this.clientP;
  }

  /** The object key of a blob. */
  keyOf(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw mailError('NOT_FOUND', 'No such blob');
    const rel = `${sha256.slice(0, 2)}/${sha256.slice(2, 4)}/${sha256}`;
    return this.loc.prefix ? `${this.loc.prefix}/${rel}` : rel;
  }

  /** What an operator needs to find the bucket (never credentials). */
  describe(): string {
    return `bucket ${this.loc.bucket}${this.loc.endpoint ? ` at ${this.loc.endpoint}` : ` in ${this.loc.region}`}`;
  }

  private init(): Promise<void> {
    this.ready ??= prepareStagingDir(this.stagingDir);
    return this.ready;
  }

  async stage(
    src: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    opts: { maxSize?: number; prefix?: Uint8Array; sha256?: string } = {},
  ): Promise<StagedBlob> {
    await this.init();
    return stageStream(this.stagingDir, src, { ...opts, inlineLimit: this.inline.limit, fsync: false });
  }

  /** Upload and confirm every staged file; return the in-memory blobs for the transaction. */
  async settle(staged: StagedBlob[]): Promise<StagedBlob[]> {
    const files = [...new Map(staged.filter((s) => s.tempPath).map((s) => [s.sha256, s])).values()];
    for (let i = 0; i < files.length; i += PARALLEL_UPLOADS) {
      await Promise.all(files.slice(i, i + PARALLEL_UPLOADS).map((s) => this.upload(s)));
    }
    // Kept and confirmed: the staging copies are done with (a discard after a failed commit finds nothing).
    await Promise.all(staged.map((s) => (s.tempPath ? unlink(s.tempPath).catch(() => {}) : undefined)));
    return staged.filter((s) => s.data);
  }

  /**
   * Put one staged file under its key and confirm it. Always uploaded, even when an object with
   * this key exists: the new LastModified makes it young, so a sweep that judged an old orphan
   * of the same bytes (before our row commits) sees it changed and leaves it (see sweep).
   */
  async upload(s: StagedBlob): Promise<void> {
    const Key = this.keyOf(s.sha256);
    try {
      const [{ s3, Upload }, client] = await Promise.all([loadS3Sdk(), this.client()]);
      const up = new Upload({
        client,
        params: { Bucket: this.loc.bucket, Key, Body: createReadStream(s.tempPath!, { highWaterMark: 1024 * 1024 }), ContentType: 'application/octet-stream' },
        partSize: PART_SIZE,
        queueSize: QUEUE_SIZE,
        // An upload that fails is aborted (its parts removed); one the abort cannot reach is
        // left to the bucket's AbortIncompleteMultipartUpload rule (docs/scaling.md).
        leavePartsOnError: false,
      });
      await up.done();
      const head = await client.send(new s3.HeadObjectCommand({ Bucket: this.loc.bucket, Key }));
      if (head.ContentLength !== s.size) {
        throw new Error(`object ${Key} has ${head.ContentLength} bytes after the upload, expected ${s.size}`);
      }
    } catch (err) {
      throw this.failure(err, `keeping ${s.size} bytes as ${Key}`);
    }
  }

  async commit(staged: StagedBlob[], trx: Transaction<Database> | Kysely<Database>): Promise<void> {
    const inMemory = staged.filter((s) => s.data);
    if (inMemory.length) await this.inline.store.commit(inMemory, trx);
    // Files reach commit only if the caller skipped settle: upload them now, before the caller's commit.
    await this.settle(staged.filter((s) => s.tempPath));
  }

  async discard(staged: StagedBlob): Promise<void> {
    if (staged.tempPath) await unlink(staged.tempPath).catch(() => {});
  }

  async open(sha256: string, range?: ByteRange): Promise<Readable> {
    // The database first: most blobs are small and live there (see FsBlobStore.open).
    try {
      return await this.inline.store.open(sha256, range);
    } catch (err) {
      if (!(err instanceof MailError && err.code === 'NOT_FOUND')) throw err;
    }
    return this.openObject(sha256, range);
  }

  /** The object's bytes (without looking in the database). */
  async openObject(sha256: string, range?: ByteRange): Promise<Readable> {
    const Key = this.keyOf(sha256);
    try {
      const [{ s3 }, client] = await Promise.all([loadS3Sdk(), this.client()]);
      const res = await client.send(
        new s3.GetObjectCommand({ Bucket: this.loc.bucket, Key, Range: range ? `bytes=${range.start}-${range.end}` : undefined }),
      );
      const body = res.Body as Readable;
      if (!range) return body;
      // HTTP lets a server ignore Range (200 and the whole object) or answer more than was asked
      // (s3rver answers bytes=0-0 with everything): take exactly the bytes asked for.
      const from = /^bytes (\d+)-(\d+)\//.exec(res.ContentRange ?? '');
      const got = from ? { start: Number(from[1]), end: Number(from[2]) } : { start: 0, end: Infinity };
      if (got.start === range.start && got.end === range.end) return body;
      if (got.start > range.start || got.end < range.end) throw new Error(`asked for bytes ${range.start}-${range.end}, got ${res.ContentRange}`);
      return Readable.from(sliceBytes(body, range.start - got.start, range.end - range.start + 1), { objectMode: false });
    } catch (err) {
      if (notFound(err)) throw mailError('NOT_FOUND', 'No such blob');
      throw this.failure(err, `reading ${Key}`);
    }
  }

  async has(sha256: string): Promise<boolean> {
    return (await this.inline.store.has(sha256)) || (await this.hasObject(sha256));
  }

  /** Whether the bucket holds the blob (with `size` bytes, when given). */
  async hasObject(sha256: string, size?: number): Promise<boolean> {
    try {
      const [{ s3 }, client] = await Promise.all([loadS3Sdk(), this.client()]);
      const head = await client.send(new s3.HeadObjectCommand({ Bucket: this.loc.bucket, Key: this.keyOf(sha256) }));
      return size === undefined || head.ContentLength === size;
    } catch (err) {
      if (notFound(err)) return false;
      throw this.failure(err, `looking for ${this.keyOf(sha256)}`);
    }
  }

  /**
   * Remove objects no row names that are older than the grace period (an upload whose row then
   * failed to commit, or a process killed between the two), the staging files of dead
   * processes, and the same in the database. The bucket is listed a page (ListObjectsV2, up to
   * 1000 keys) at a time. S3 has no conditional delete on most servers, so each candidate is
   * looked at again just before its delete: an intake that uploaded the same bytes since the
   * listing (its row not committed yet) has changed LastModified, and the object stays.
   */
  async sweep(opts: { graceMs: number; db: Kysely<Database> }): Promise<{ blobs: number; staging: number }> {
    const inner = (await this.inline.store.sweep?.(opts)) ?? { blobs: 0, staging: 0 };
    const staging = await sweepStagingDir(this.stagingDir);
    const cutoff = Date.now() - opts.graceMs;
    let blobs = 0;
    let token: string | undefined;
    do {
      let page;
      try {
        const [{ s3 }, client] = await Promise.all([loadS3Sdk(), this.client()]);
        page = await client.send(
          new s3.ListObjectsV2Command({ Bucket: this.loc.bucket, Prefix: this.loc.prefix ? `${this.loc.prefix}/` : undefined, ContinuationToken: token }),
        );
      } catch (err) {
        throw this.failure(err, 'listing the bucket');
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      const old: { sha256: string; modified: number }[] = [];
      for (const o of page.Contents ?? []) {
        const sha256 = o.Key?.slice(-64) ?? '';
        // Only keys this store writes: anything else in the bucket is not ours to remove.
        if (!/^[0-9a-f]{64}$/.test(sha256) || o.Key !== this.keyOf(sha256) || !o.LastModified) continue;
        if (o.LastModified.getTime() < cutoff) old.push({ sha256, modified: o.LastModified.getTime() });
      }
      for (let i = 0; i < old.length; i += SWEEP_BATCH) {
        const batch = old.slice(i, i + SWEEP_BATCH);
        const named = await referencedBlobs(opts.db, batch.map((c) => c.sha256));
        for (const c of batch) if (!named.has(c.sha256) && (await this.removeOrphan(c))) blobs++;
      }
    } while (token);
    return { blobs: blobs + inner.blobs, staging: staging + inner.staging };
  }

  private async removeOrphan(c: { sha256: string; modified: number }): Promise<boolean> {
    const Key = this.keyOf(c.sha256);
    try {
      const [{ s3 }, client] = await Promise.all([loadS3Sdk(), this.client()]);
      const head = await client.send(new s3.HeadObjectCommand({ Bucket: this.loc.bucket, Key }));
      if (head.LastModified?.getTime() !== c.modified) return false;
      await client.send(new s3.DeleteObjectCommand({ Bucket: this.loc.bucket, Key }));
      return true;
    } catch (err) {
      if (notFound(err)) return false;
      throw err;
    }
  }

  /** An SDK or network failure as the catalogue's OBJECT_STORE_FAILED, naming the bucket for the log. */
  private failure(err: unknown, doing: string): MailError {
    if (err instanceof MailError) return err;
    const what = isServiceError(err) ? `${err.name} (HTTP ${err.$metadata.httpStatusCode ?? '?'})` : err instanceof Error ? err.message : String(err);
    return mailError('OBJECT_STORE_FAILED', undefined, { cause: new Error(`object storage ${this.describe()}: ${doing} failed: ${what}`, { cause: err }) });
  }
}

/** `take` bytes of a stream after its first `skip`, then stop reading (the rest is not fetched). */
async function* sliceBytes(src: Readable, skip: number, take: number): AsyncGenerator<Buffer> {
  try {
    for await (const c of src) {
      let buf = c as Buffer;
      if (skip >= buf.length) {
        skip -= buf.length;
        continue;
      }
      buf = buf.subarray(skip, skip + take);
      skip = 0;
      take -= buf.length;
      yield buf;
      if (take <= 0) return;
    }
  } finally {
    src.destroy();
  }
}

/** An answer of the S3 server (the SDK's S3ServiceException, told by its $metadata without loading the SDK). */
function isServiceError(err: unknown): err is Error & { $metadata: { httpStatusCode?: number } } {
  return err instanceof Error && typeof (err as { $metadata?: unknown }).$metadata === 'object' && (err as { $metadata?: unknown }).$metadata !== null;
}

function notFound(err: unknown): boolean {
  return isServiceError(err) && (err.name === 'NotFound' || err.name === 'NoSuchKey' || err.$metadata.httpStatusCode === 404);
}
