import type { Readable } from 'node:stream';
import type { Kysely, Transaction } from 'kysely';
import type { Database, MessageTextTable } from './schema.js';

/**
 * Bytes received and hashed, not yet visible under their hash. Small blobs are held in memory
 * (`data`) and become durable with the database commit that also keeps their row; larger ones
 * wait in a fsynced temporary file (`tempPath`).
 */
export interface StagedBlob {
  sha256: string;
  size: number;
  /** Temporary file holding the bytes until commit (large blobs). */
  tempPath?: string;
  /** The bytes themselves (small blobs). */
  data?: Buffer;
}

/** Bytes `start` to `end` of a blob, both included (as HTTP Range and fs.createReadStream count). */
export interface ByteRange {
  start: number;
  end: number;
}

/** Content-addressed storage for raw messages and parts. */
export interface BlobStore {
  /**
   * Write a stream to a temporary file, fsync it, and hash it. Throws MailError TOO_LARGE past
   * maxSize. `sha256`: the bytes' hash, when this process has just computed it (the parse
   * thread's parts), so it is not computed twice; never a hash that came from outside.
   */
  stage(
    src: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    opts?: { maxSize?: number; prefix?: Uint8Array; sha256?: string },
  ): Promise<StagedBlob>;
  /**
   * Make staged blobs durable under their hash. For the file store: rename and fsync each
   * directory once for the whole batch; for the database store: insert chunks in `trx`.
   */
  commit(staged: StagedBlob[], trx: Transaction<Database> | Kysely<Database>): Promise<void>;
  /**
   * Make durable now, before any transaction, the staged blobs that need none (files: rename and
   * directory fsync), and return the rest for `commit` inside the caller's transaction. Holding
   * a transaction through file fsyncs would hold SQLite's one connection, and every query of
   * the process would wait for the disk.
   */
  settle(staged: StagedBlob[]): Promise<StagedBlob[]>;
  /** Drop a staged blob that will not be committed. */
  discard(staged: StagedBlob): Promise<void>;
  /**
   * Stream a blob's bytes, or only `range` of them (a download's HTTP Range: the store reads just
   * those, it does not skip through the rest); throws NOT_FOUND if missing. The range must lie
   * within the blob (the caller knows the size from the row).
   */
  open(sha256: string, range?: ByteRange): Promise<Readable>;
  /** Whether the blob exists. */
  has(sha256: string): Promise<boolean>;
  /**
   * Remove blobs no row points at that are older than `graceMs`, and staging files of
   * processes that died (see store/sweep.ts); returns how many of each.
   */
  sweep?(opts: { graceMs: number; db: Kysely<Database> }): Promise<{ blobs: number; staging: number }>;
}

/** What a search can look in: the columns of the search index. */
export type SearchColumn = 'subject' | 'sender' | 'recipients' | 'rcpt' | 'body';

/** One message's searchable text, lower case (store/search-index.ts: searchDoc builds it). */
export type SearchDoc = Omit<MessageTextTable, 'doc'>;

/**
 * The search index: fed when a message is parsed (and by `postroom reindex`), asked by the
 * message list for the few messages a selective substring names, so that a rare term costs an
 * index probe instead of a walk through every row. SQLite: FTS5 trigram; PostgreSQL: pg_trgm.
 */
export interface SearchIndex {
  /** Add or replace these messages' documents, in the caller's transaction. */
  put(trx: Kysely<Database> | Transaction<Database>, docs: SearchDoc[]): Promise<void>;
  /**
   * Ids of the indexed messages whose `cols` contain `needle` (lower case), when at most `cap`
   * do; undefined when more do, or when the index cannot tell (fewer than 3 characters: no trigram).
   */
  lookup(db: Kysely<Database> | Transaction<Database>, cols: readonly SearchColumn[], needle: string, cap: number): Promise<string[] | undefined>;
}
