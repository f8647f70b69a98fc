import path from 'node:path';
import type { Config } from '../config/schema.js';
import type { BlobStore } from '../core/ports.js';
import { FsBlobStore } from './blobs.js';
import type { Db } from './db.js';

/** The blob store a config asks for: files under DATA_DIR/blobs by default. */
export function openBlobStore(config: Config, db: Db): BlobStore {
  const kind = config.store.blobs ?? (db.dialect === 'postgres' ? 'db' : 'fs');
  if (kind === 'db') {
    throw new Error('store.blobs: db is not available yet; use fs');
  }
  return new FsBlobStore(path.join(config.dataDir, 'blobs'));
}
