import path from 'node:path';
import type { BlobStore } from './ports.js';
import { FsBlobStore, INLINE_LIMIT } from './blobs.js';
import type { Db } from './db.js';
import { DbBlobStore } from './pg-blobs.js';

/**
 * The blob store a config asks for. Default: in the database on PostgreSQL (every node sees
 * every message without a shared file system), files under DATA_DIR/blobs on SQLite (small
 * ones in the database there too, see FsBlobStore). `stagingDir`: where blobs kept in the
 * database wait while they stream in (default DATA_DIR/staging).
 */
/** What opening the blob store reads of the config. */
export interface BlobConfig {
  dataDir: string;
  store: { blobs?: 'fs' | 'db' };
}

export function openBlobStore(config: BlobConfig, db: Db, opts: { stagingDir?: string } = {}): BlobStore {
  const kind = blobKind(config, db);
  const inDb = new DbBlobStore(db.kysely, opts.stagingDir ?? path.join(config.dataDir, 'staging'));
  if (kind === 'db') return inDb;
  // Files, with small blobs in the database so that a batch of them costs one commit's fsync.
  return new FsBlobStore(path.join(config.dataDir, 'blobs'), { store: inDb, limit: INLINE_LIMIT });
}

/** Where a config keeps raw bytes on this store: `db` (in the database) or `fs` (files under DATA_DIR/blobs). */
export function blobKind(config: BlobConfig, db: Pick<Db, 'dialect'>): 'db' | 'fs' {
  return config.store.blobs ?? (db.dialect === 'postgres' ? 'db' : 'fs');
}
