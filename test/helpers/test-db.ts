import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { migrate, openDb, type Db, type DbOptions } from '../../src/store/db.js';
import { tempDir, testBackend } from './env.js';

/** A PostgreSQL schema of its own, as a `?schema=` URL; `drop()` removes it and everything in it. */
export async function pgTestSchema(): Promise<{ url: string; schema: string; drop(): Promise<void> }> {
  const base = process.env.POSTROOM_TEST_DATABASE_URL;
  if (!base) throw new Error('POSTROOM_TEST_BACKEND=postgres needs POSTROOM_TEST_DATABASE_URL');
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const admin = async (q: string) => {
    const c = new pg.Client({ connectionString: base });
    await c.connect();
    try {
      await c.query(q);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE SCHEMA ${schema}`);
  const url = new URL(base);
  url.searchParams.set('schema', schema);
  return { url: url.toString(), schema, drop: () => admin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`) };
}

export interface TestDb extends Db {
  /** The database string to hand another process or a second openDb. */
  url: string;
  dir: string;
  /** Close, then drop the schema / remove the directory. */
  cleanup(): Promise<void>;
}

/** A migrated store on the backend this run of the suite is for, in a temp dir / its own schema. */
export async function openTestDb(opts: DbOptions = {}): Promise<TestDb> {
  const tmp = tempDir();
  const pgs = testBackend() === 'postgres' ? await pgTestSchema() : undefined;
  const url = pgs?.url ?? path.join(tmp.dir, 'postroom.db');
  const db = openDb(url, tmp.dir, opts);
  await migrate(db);
  return Object.assign(db, {
    url,
    dir: tmp.dir,
    async cleanup() {
      await db.close();
      await pgs?.drop();
      tmp.cleanup();
    },
  });
}
