import { createRequire } from 'node:module';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteAdapter, SqliteDialect, sql, type SqliteDialectConfig, type MigrationProvider, type Transaction } from 'kysely';
import type pg from 'pg';
import { makeDirsSync } from '../core/make-dirs.js';
import { migrations } from './migrations/index.js';
import { ReadThread } from './read-thread.js';
import { WalCheckpointer } from './wal-checkpointer.js';
import { WalSync } from './wal-sync.js';
import type { Database, Dialect } from './schema.js';

/** An open store: the Kysely handle and which engine is behind it. */
export interface Db {
  kysely: Kysely<Database>;
  dialect: Dialect;
  /** PostgreSQL: the connection settings (leases open a dedicated connection with them). */
  pg?: PgTarget;
  /** SQLite: fsyncs the write-ahead log off the event loop (see WalSync). */
  wal?: WalSync;
  /** SQLite with backgroundCheckpoints: the thread that checkpoints the WAL. */
  checkpointer?: WalCheckpointer;
  /** SQLite with readThread: message lists and searches run there, off the event loop. */
  reader?: ReadThread;
  /**
   * SQLite: run a statement to its end on the connection, once Kysely's connection is free. A
   * prepared statement's run() steps once, which for `PRAGMA incremental_vacuum` frees one page
   * out of thousands; sqlite3_exec steps until done.
   */
  execToEnd?(text: string): Promise<void>;
  close(): Promise<void>;
}

/** Where a PostgreSQL store lives: server URL (without ?schema) and the schema of our tables. */
export interface PgTarget {
  connectionString: string;
  /** From `?schema=`; undefined means the server's default search_path (usually `public`). */
  schema?: string;
  /** Session settings sent at connect (`-c name=value …`). */
  options?: string;
}

/** Tuning that only PostgreSQL uses; SQLite ignores it. */
export interface DbOptions {
  /** Connections per node (default 10). Several nodes: keep nodes × poolSize under max_connections. */
  poolSize?: number;
  /** Milliseconds a statement may run before the server cancels it (default 30 s; 0 = never). */
  statementTimeout?: number;
  /** Told about errors on idle pooled connections (e.g. the server restarted), and (SQLite) a failed checkpoint thread. */
  onError?: (err: Error) => void;
  /**
   * SQLite: checkpoint the WAL on a thread of its own instead of inside commits on the event
   * loop (see WalCheckpointer), once the log has grown past `startAt` bytes (default 1 MiB).
   * For long-running servers; a short command leaves it off.
   */
  backgroundCheckpoints?: boolean | { startAt: number };
  /** SQLite: run the API's message lists on a thread with a read-only connection (ReadThread). For servers. */
  readThread?: boolean;
}

/** True for postgres:// and postgresql:// URLs. */
export function isPostgresUrl(url: string | undefined): url is string {
  return !!url && /^postgres(ql)?:\/\//i.test(url);
}

const require = createRequire(import.meta.url);
let pgDriver: typeof pg | undefined;

/** The pg driver, loaded at first use: a SQLite store never needs it (~1.5 MiB of heap at idle). */
export function loadPg(): typeof pg {
  if (!pgDriver) {
    // require, not import(): openDb is synchronous, and pg is CommonJS (its ESM entry wraps the same module).
    pgDriver = require('pg') as typeof pg;
    // int8 (bigint: sizes) and numeric come back as strings by default; our sizes fit a double.
    pgDriver.types.setTypeParser(20, (v) => Number(v));
  }
  return pgDriver;
}

/** Split a postgres:// URL into the server URL and the `?schema=` we keep our tables in. */
export function pgTarget(database: string, statementTimeout = 30_000): PgTarget {
  const url = new URL(database);
  // ?schema=NAME puts every table in that schema (tests run each in their own, dropped after).
  const schema = url.searchParams.get('schema') ?? undefined;
  url.searchParams.delete('schema');
  // The name goes into a startup option and, unquoted, into SQL: allow identifiers only.
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new Error(`?schema=${schema}: use lower-case letters, digits and _ only`);
  }
  const opts = [
    ...(schema ? [`-c search_path=${schema}`] : []),
    // A runaway query must not hold a pool connection (and its locks) for ever.
    `-c statement_timeout=${statementTimeout}`,
    // A transaction left open by a stuck client would block VACUUM and hold row locks.
    '-c idle_in_transaction_session_timeout=60000',
  ];
  return { connectionString: url.toString(), schema, options: opts.join(' ') };
}

/** Open the database named by `database` (postgres URL or SQLite file); default DATA_DIR/postroom.db. */
export function openDb(database: string | undefined, dataDir: string, opts: DbOptions = {}): Db {
  if (isPostgresUrl(database)) {
    const target = pgTarget(database, opts.statementTimeout);
    const pool = new (loadPg().Pool)({
      connectionString: target.connectionString,
      options: target.options,
      max: opts.poolSize ?? 10,
      // Waiting for a connection longer than this means the server is gone: fail (→ 451), don't hang.
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
    });
    // Without a listener an idle connection's error (server restart) would crash the process.
    pool.on('error', (err) => opts.onError?.(err));
    const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { kysely, dialect: 'postgres', pg: target, close: () => kysely.destroy() };
  }
  const file = database ?? path.join(dataDir, 'postroom.db');
  makeDirsSync(path.dirname(file));
  const sqlite = new SqliteDatabase(file);
  // Before any table exists this makes the database give pages back (store/retention.ts runs
  // incremental_vacuum after removing messages). On a database that already has tables SQLite
  // only records the wish: it takes effect at the next VACUUM (`postroom purge --vacuum`).
  sqlite.pragma('auto_vacuum = INCREMENTAL');
  sqlite.pragma('journal_mode = WAL');
  // FULL: in WAL mode NORMAL may lose the last commits on power loss. Every write is durable by
  // default; transact() commits NORMAL and syncs the WAL itself, off the event loop (WalSync).
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  let checkpointer: WalCheckpointer | undefined;
  if (opts.backgroundCheckpoints) {
    checkpointer = new WalCheckpointer(file, {
      startAt: opts.backgroundCheckpoints === true ? undefined : opts.backgroundCheckpoints.startAt,
      onStart() {
        if (sqlite.open) sqlite.pragma('wal_autocheckpoint = 0');
      },
      onFailure(err) {
        // Back to SQLite's own checkpoints (on the loop, but the log stays bounded).
        if (sqlite.open) sqlite.pragma('wal_autocheckpoint = 1000');
        opts.onError?.(err);
      },
    });
  }
  const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: cachingStatements(sqlite) }) });
  const wal = new WalSync(`${file}-wal`, async () => {
    // Through Kysely, so it waits for a transaction in progress on this connection. FULL: every
    // frame is copied and the database file synced (synchronous=NORMAL syncs after a checkpoint).
    const r = await sql<{ busy: number; log: number; checkpointed: number }>`PRAGMA wal_checkpoint(FULL)`.execute(kysely);
    const row = r.rows[0];
    if (!row || row.busy !== 0 || row.checkpointed < row.log) {
      throw new Error(`the write-ahead log could not be copied into the database after a failed fsync (${JSON.stringify(row)})`);
    }
  });
  const reader = opts.readThread ? new ReadThread(file, { onError: opts.onError }) : undefined;
  return {
    kysely,
    dialect: 'sqlite',
    wal,
    checkpointer,
    reader,
    // Inside Kysely's connection: no transaction of ours is open on the handle meanwhile.
    execToEnd: (text) => kysely.connection().execute(async () => void sqlite.exec(text)),
    async close() {
      await reader?.close();
      await checkpointer?.stop();
      await kysely.destroy();
      await wal.close();
    },
  };
}

/** Statements kept prepared, by SQL text; beyond this the oldest is dropped. */
const STATEMENT_CACHE = 500;

/**
 * better-sqlite3 as Kysely's SQLite driver sees it, but preparing each SQL text once: Kysely
 * prepares every query it runs, and at intake rates preparing cost more than executing.
 * Safe because every statement runs to completion before the next one starts (one connection,
 * Kysely's mutex) and nothing here streams rows with iterate().
 */
export function cachingStatements(sqlite: SqliteDatabase.Database): SqliteDialectConfig['database'] {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(text: string) {
      let stmt = cache.get(text);
      if (stmt) {
        // Map order is insertion order: re-inserting keeps the recently used at the end.
        cache.delete(text);
      } else {
        stmt = sqlite.prepare(text);
        if (cache.size >= STATEMENT_CACHE) cache.delete(cache.keys().next().value!);
      }
      cache.set(text, stmt);
      return stmt;
    },
  };
}

const provider: MigrationProvider = { getMigrations: async () => migrations };

/**
 * Apply every pending migration; returns the names applied. Throws with the failing one named.
 * Several nodes may start together: one migrates while holding a lock (PostgreSQL: Kysely's
 * session advisory lock; SQLite: the write lock), the others then find nothing to do.
 */
export async function migrate(db: Db): Promise<string[]> {
  if (db.dialect !== 'postgres') {
    return db.kysely.connection().execute(async (conn) => {
      // Kysely takes no lock on SQLite (it assumes one process), yet `serve`, `migrate` and the
      // pipe command may start together on one file. BEGIN IMMEDIATE takes the write lock before
      // anything is read (others wait busy_timeout), and makes the whole migration atomic.
      await sql`begin immediate`.execute(conn);
      try {
        const applied = await runMigrator(conn);
        await sql`commit`.execute(conn);
        return applied;
      } catch (err) {
        await sql`rollback`.execute(conn).catch(() => {});
        throw err;
      }
    });
  }
  return db.kysely.connection().execute(async (conn) => {
    // Waiting for another node's migration must not be cut short by the statement timeout.
    await sql`set statement_timeout = 0`.execute(conn);
    try {
      // Kysely looks for its bookkeeping tables in every schema unless told which one: name ours,
      // or a second schema in the same database would find the first one's and skip creating its own.
      const schema =
        db.pg?.schema ?? (await sql<{ s: string }>`select current_schema() as s`.execute(conn)).rows[0]?.s ?? 'public';
      return await runMigrator(schemaScoped(conn, schema), schema);
    } finally {
      await sql`reset statement_timeout`.execute(conn);
    }
  });
}

/**
 * The connection as Kysely's Migrator sees it, with an introspection that looks in our schema
 * only. Kysely's own lists every column of every table of every schema the user may use, with
 * pg_get_serial_sequence on each: a schema or table that someone else drops during that listing
 * fails our migration (3F000 invalid_schema_name, 42703 "column … does not exist"), although it
 * is not ours: seen in CI with many test schemas coming and going in one database. The Migrator
 * only asks which schemas and tables exist, by name.
 */
export function schemaScoped(conn: Kysely<any>, schema: string): Kysely<any> {
  const introspection = {
    async getSchemas() {
      const r = await sql<{ name: string }>`select schema_name as name from information_schema.schemata where schema_name = ${schema}`.execute(conn);
      return r.rows;
    },
    async getTables() {
      const r = await sql<{ name: string; schema: string }>`
        select table_name as name, table_schema as schema from information_schema.tables where table_schema = ${schema}`.execute(conn);
      return r.rows.map((t) => ({ ...t, isView: false, columns: [] }));
    },
    async getMetadata() {
      return { tables: await this.getTables() };
    },
  };
  return new Proxy(conn, {
    get(target, prop) {
      if (prop === 'introspection') return introspection;
      const v = Reflect.get(target, prop, target);
      // Kysely's methods use private fields: call them on the real object.
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

async function runMigrator(kysely: Kysely<any>, schema?: string): Promise<string[]> {
  const migrator = new Migrator({ db: kysely, provider, ...(schema ? { migrationTableSchema: schema } : {}) });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error) {
    throw new Error(`migration ${failed?.migrationName ?? '?'} failed: ${(error as Error).message ?? error}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/**
 * Run `fn` in a durable transaction; on failure throw the error that caused it.
 *
 * On SQLite the commit is written with synchronous=NORMAL and then made durable by an fsync of
 * the WAL on the thread pool (WalSync), so the event loop keeps serving SMTP sessions while the
 * disk works, and concurrent commits share fsyncs. SQLite also rolls a transaction back by
 * itself on SQLITE_FULL and some I/O errors (also at COMMIT), after which a ROLLBACK fails with
 * "no transaction is active"; Kysely's transaction() would throw that and hide the real cause
 * (a full disk must answer 452 4.3.1, not 451 4.3.0), hence the controlled transaction.
 */
export async function transact<T>(db: Db, fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  if (!db.wal) return controlled(db.kysely, fn);
  const result = await db.kysely.connection().execute(async (conn) => {
    // One connection (SQLite has exactly one here): nothing else commits while this is NORMAL.
    await sql`PRAGMA synchronous = NORMAL`.execute(conn);
    try {
      return await controlled(conn, fn);
    } finally {
      await sql`PRAGMA synchronous = FULL`.execute(conn);
    }
  });
  await db.wal.after();
  return result;
}

async function controlled<T>(db: Kysely<Database>, fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  const trx = await db.startTransaction().execute();
  try {
    const result = await fn(trx);
    await trx.commit().execute();
    return result;
  } catch (err) {
    await trx.rollback().execute().catch(() => {});
    throw err;
  }
}

/**
 * A transaction for rows derived from kept mail (parse results), which can be rebuilt from the
 * raw bytes: it skips its own fsync. On SQLite the commit is written to the WAL without a sync
 * (synchronous=NORMAL for this one transaction; better-sqlite3 would otherwise block the event
 * loop on an fsync per parsed message), and becomes durable with the next durable commit or
 * WAL sync, which covers the WAL up to its end. On PostgreSQL: synchronous_commit off for the transaction. A
 * crash may lose such a commit; the parse sweep at start redoes it.
 */
export async function relaxedTransaction<T>(db: Kysely<Database>, fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  if (!(db.getExecutor().adapter instanceof SqliteAdapter)) {
    return db.transaction().execute(async (trx) => {
      await sql`SET LOCAL synchronous_commit = off`.execute(trx);
      return fn(trx);
    });
  }
  // One connection (SQLite has exactly one here): no intake commit can slip in while relaxed.
  return db.connection().execute(async (conn) => {
    await sql`PRAGMA synchronous = NORMAL`.execute(conn);
    try {
      return await conn.transaction().execute(fn);
    } finally {
      await sql`PRAGMA synchronous = FULL`.execute(conn);
    }
  });
}
