import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { migrate, openDb, type Db } from '../store/db.js';

/** Open the configured store (migrated), run `fn`, and close it: what every store-reading command does. */
export async function withStore<T>(configFile: string | undefined, fn: (db: Db, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig(configFile);
  // One connection: a command does one thing at a time, and a small footprint on a shared server.
  const db = openDb(config.store.database, config.dataDir, { poolSize: 1 });
  try {
    await migrate(db);
    return await fn(db, config);
  } finally {
    await db.close();
  }
}
