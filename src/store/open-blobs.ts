import path from 'node:path';
import type { BlobStore } from './ports.js';
import { FsBlobStore, INLINE_LIMIT } from './blobs.js';
import type { Db } from './db.js';
import { DbBlobStore } from './pg-blobs.js';
import { S3BlobStore, type S3Location } from './s3-blobs.js';

/** What opening the blob store reads of the config. */
export interface BlobConfig {
  dataDir: string;
  store: { blobs?: BlobKind; s3?: S3Location };
}

/** Where raw bytes live: files, the database, or an S3-compatible bucket. */
export type BlobKind = 'fs' | 'db' | 's3';

/**
 * The blob store a config asks for. Default: in the database on PostgreSQL (every node sees
 * every message without a shared file system), files under DATA_DIR/blobs on SQLite (small
 * ones in the database there too, see FsBlobStore); `s3`: objects in a bucket, small ones in
 * the database. `stagingDir`: where blobs bound for the database or the bucket wait while they
 * stream in (default DATA_DIR/staging). `kind` overrides the config's (postroom migrate-blobs).
 */
export function openBlobStore(config: BlobConfig, db: Db, opts: { stagingDir?: string; kind?: BlobKind } = {}): BlobStore {
  const kind = opts.kind ?? blobKind(config, db);
  const stagingDir = opts.stagingDir ?? path.join(config.dataDir, 'staging');
  const inDb = new DbBlobStore(db.kysely, stagingDir);
  if (kind === 'db') return inDb;
  if (kind === 's3') {
    if (!config.store.s3) throw new Error('store.blobs: s3 needs store.s3 with at least a bucket');
    return new S3BlobStore(config.store.s3, stagingDir, { store: inDb, limit: INLINE_LIMIT });
  }
  // Files, with small blobs in the database so that a batch of them costs one commit's fsync.
  return new FsBlobStore(path.join(config.dataDir, 'blobs'), { store: inDb, limit: INLINE_LIMIT });
}

/** Where a config keeps raw bytes on this store: `db` (in the database), `fs` (files under DATA_DIR/blobs) or `s3` (a bucket). */
export function blobKind(config: BlobConfig, db: Pick<Db, 'dialect'>): BlobKind {
  return config.store.blobs ?? (db.dialect === 'postgres' ? 'db' : 'fs');
}
