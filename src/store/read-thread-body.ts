import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { parentPort, workerData } from 'node:worker_threads';
import { cachingStatements } from './db.js';
import { listMessagePage } from './messages.js';
import type { ReadReply, ReadRequest } from './read-thread.js';
import type { Database } from './schema.js';

// The thread's side of ReadThread: a read-only connection of its own to the SQLite file. In WAL
// mode it reads the last committed state while the main thread's connection writes, and
// whatever it costs (a search walking its window) is spent here, not on the SMTP loop.

const sqlite = new SqliteDatabase((workerData as { file: string }).file, { readonly: true, fileMustExist: true });
sqlite.pragma('busy_timeout = 5000');
const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: cachingStatements(sqlite) }) });

async function handle(req: ReadRequest): Promise<ReadReply> {
  try {
    return { seq: req.seq, page: await listMessagePage(kysely, req.filter) };
  } catch (err) {
    return { seq: req.seq, error: err instanceof Error ? err.message : String(err) };
  }
}

// One at a time, in order: better-sqlite3 is synchronous, so the thread's loop serialises them anyway.
parentPort!.on('message', (req: ReadRequest) => {
  void handle(req).then((reply) => parentPort!.postMessage(reply));
});
