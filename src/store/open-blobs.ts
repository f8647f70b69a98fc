import path from 'node:path';
import type { Config } from '../config/schema.js';
import type { BlobStore } from '../core/ports.js';
import { FsBlobStore, INLINE_LIMIT } from './blobs.js';
import type { Db } from './db.js';
import { DbBlobStore } from './pg-blobs.js';

/**
 * The blob store a config asks for. Default: in the database on PostgreSQL (every node sees
 * every message without a shared file system), files under DATA_DIR/blobs on SQLite (small
 * ones in the database there too, see FsBlobStore).
 */
export function openBlobStore(config: Config, db: Db): BlobStore {
  const kind = config.store.blobs ?? (db.dialect === 'postgres' ? 'db' : 'fs');
  const inDb = new DbBlobStore(db.kysely, path.join(config.dataDir, 'staging'));
  if (kind === 'db') return inDb;
  // Files, with small blobs in the database so that a batch of them costs one commit's fsync.
  return new FsBlobStore(path.join(config.dataDir, 'blobs'), { store: inDb, limit: INLINE_LIMIT });
}
