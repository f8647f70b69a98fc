import type { Transaction } from 'kysely';
import { relaxedTransaction, transact, type Db } from './db.js';
import type { Database } from './schema.js';

/** `durable`: committed and fsynced before it resolves (transact); `relaxed`: derived rows (relaxedTransaction). */
export type WriteMode = 'durable' | 'relaxed';

type Write<T> = (trx: Transaction<Database>) => Promise<T>;

interface Item {
  fn: Write<unknown>;
  resolve(v: unknown): void;
  reject(err: unknown): void;
}

/** Writes sharing one transaction at most; past it the rest wait for the next. */
const MAX_BATCH = 64;

/**
 * Group commit for the writes that follow intake (parse results, routing marks, delivery
 * enqueues). On SQLite every transaction costs its BEGIN/COMMIT statements and, at COMMIT,
 * a write of every page it touched to the WAL, on the event loop (better-sqlite3 is
 * synchronous); one message's parse save and its plan touched the same dozen pages in two
 * commits of their own, a fifth of the process's CPU at 4 KiB intake rates. Writes that
 * arrive while a batch commits share the next one.
 *
 * `fn` may run twice: if any write of a batch fails, the batch is rolled back and each of its
 * writes runs again alone, so that one write's failure (a value the database refuses) is
 * reported to its caller and costs the others nothing. So `fn` must only write through `trx`.
 *
 * PostgreSQL gets no batching: the pool runs transactions side by side and the server does its
 * own group commit, while a shared transaction would queue every write behind the others.
 */
export function batchedWrite<T>(db: Db, mode: WriteMode, fn: Write<T>): Promise<T> {
  if (db.dialect !== 'sqlite') return alone(db, mode, fn);
  let pair = batchers.get(db);
  if (!pair) batchers.set(db, (pair = { durable: new Batcher(db, 'durable'), relaxed: new Batcher(db, 'relaxed') }));
  return pair[mode].run(fn);
}

const batchers = new WeakMap<Db, Record<WriteMode, Batcher>>();

function alone<T>(db: Db, mode: WriteMode, fn: Write<T>): Promise<T> {
  return mode === 'durable' ? transact(db, fn) : relaxedTransaction(db.kysely, fn);
}

class Batcher {
  private queue: Item[] = [];
  private running = false;

  constructor(
    private readonly db: Db,
    private readonly mode: WriteMode,
  ) {}

  run<T>(fn: Write<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (this.running) return;
      this.running = true;
      // One turn of the loop first: the parses and plans finishing in this turn join the batch.
      setImmediate(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, MAX_BATCH);
        if (batch.length === 1) {
          await this.one(batch[0]);
          continue;
        }
        let results: unknown[];
        try {
          results = await alone(this.db, this.mode, async (trx) => {
            const out: unknown[] = [];
            for (const item of batch) out.push(await item.fn(trx));
            return out;
          });
        } catch {
          // Someone's write failed (or the commit did): each again on its own, so each caller
          // learns its own outcome.
          for (const item of batch) await this.one(item);
          continue;
        }
        batch.forEach((item, i) => item.resolve(results[i]));
      }
    } finally {
      this.running = false;
    }
  }

  private async one(item: Item): Promise<void> {
    try {
      item.resolve(await alone(this.db, this.mode, item.fn));
    } catch (err) {
      item.reject(err);
    }
  }
}
