import type { Kysely, Transaction } from 'kysely';
import { transact, type Db } from './db.js';
import type { Database } from './schema.js';

type Q = Kysely<Database> | Transaction<Database>;

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  object: string | null;
  detail: Record<string, unknown> | null;
  ip: string | null;
}

/** Record one action. `detail` must never hold a secret (passwords, token values). */
export async function recordAudit(
  db: Db,
  e: { actor: string; action: string; object?: string | null; detail?: Record<string, unknown> | null; ip?: string | null },
  now = new Date(),
): Promise<void> {
  await transact(db, (trx) =>
    trx
      .insertInto('audit_log')
      .values({
        at: now.toISOString(),
        actor: e.actor,
        action: e.action,
        object: e.object?.slice(0, 1000) ?? null,
        detail: e.detail ? JSON.stringify(e.detail).slice(0, 8000) : null,
        ip: e.ip ?? null,
      })
      .execute(),
  );
}

/** Entries newest first, `limit` at a time; `before` is the last id of the previous page. */
export async function listAudit(
  db: Q,
  f: { actor?: string; action?: string; since?: string; before?: number; limit: number },
): Promise<{ items: AuditEntry[]; nextCursor: string | null }> {
  let q = db.selectFrom('audit_log').selectAll();
  if (f.actor !== undefined) q = q.where('actor', '=', f.actor);
  if (f.action !== undefined) q = q.where('action', '=', f.action);
  if (f.since !== undefined) q = q.where('at', '>=', f.since);
  if (f.before !== undefined) q = q.where('id', '<', f.before);
  const rows = await q.orderBy('id', 'desc').limit(f.limit + 1).execute();
  const page = rows.slice(0, f.limit);
  return {
    items: page.map((r) => ({ ...r, id: Number(r.id), detail: r.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : null })),
    nextCursor: rows.length > f.limit ? String(page[page.length - 1]!.id) : null,
  };
}
