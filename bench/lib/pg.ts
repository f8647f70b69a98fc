import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The server to bench against: $POSTROOM_BENCH_DATABASE_URL, else the test server's URL. */
export function pgBaseUrl(): string {
  return process.env.POSTROOM_BENCH_DATABASE_URL ?? process.env.POSTROOM_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
}

/** One statement on a connection of its own. */
export async function pgQuery(url: string, q: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(q);
  } finally {
    await c.end();
  }
}

/** Throws with a hint when the bench's PostgreSQL is not reachable. */
export async function requirePg(): Promise<void> {
  try {
    await pgQuery(pgBaseUrl(), 'SELECT 1');
  } catch (err) {
    throw new Error(`PostgreSQL at ${pgBaseUrl()} not reachable (set POSTROOM_BENCH_DATABASE_URL): ${(err as Error).message}`);
  }
}

/** A fresh schema for one case: the URL nodes use (`store.database`), a message count, and a drop. */
export async function pgSchema() {
  const base = pgBaseUrl();
  const schema = `bench_${randomBytes(5).toString('hex')}`;
  await pgQuery(base, `CREATE SCHEMA ${schema}`);
  const url = new URL(base);
  url.searchParams.set('schema', schema);
  return {
    url: url.toString(),
    kept: async () => Number((await pgQuery(base, `SELECT count(*) AS n FROM ${schema}.messages`)).rows[0].n),
    drop: () => pgQuery(base, `DROP SCHEMA IF EXISTS ${schema} CASCADE`),
  };
}
