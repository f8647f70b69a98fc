import path from 'node:path';
import Database from 'better-sqlite3';

/** Rows in a Postroom data directory's SQLite store (read-only; the server may still run). */
export function keptMessages(dataDir: string): number {
  const db = new Database(path.join(dataDir, 'postroom.db'), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM messages').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Messages not yet parsed (parsing runs after the ack, from the store). */
export function unparsedMessages(dataDir: string): number {
  const db = new Database(path.join(dataDir, 'postroom.db'), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM messages WHERE parsed_at IS NULL').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Deliveries planned for one route (any status). */
export function routeDeliveries(dataDir: string, route: string): number {
  const db = new Database(path.join(dataDir, 'postroom.db'), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM deliveries WHERE route = ?').get(route) as { n: number }).n;
  } finally {
    db.close();
  }
}
