import { transact, type Db } from './db.js';

/** A route managed through the API, as stored: its definition is the JSON the client sent. */
export interface ApiRouteRow {
  name: string;
  version: number;
  definition: unknown;
  updatedBy: string;
  updatedAt: string;
}

export interface RouteVersion {
  name: string;
  version: number;
  op: 'create' | 'update' | 'delete';
  definition: unknown;
  actor: string;
  at: string;
}

/** The counter every change of an API route raises (one row, read by its primary key). */
export async function apiRoutesVersion(db: Db): Promise<number> {
  const row = await db.kysely.selectFrom('routes_state').select('version').where('id', '=', 1).executeTakeFirst();
  return Number(row?.version ?? 0);
}

/** Every API route, by name. */
export async function listApiRoutes(db: Db): Promise<ApiRouteRow[]> {
  const rows = await db.kysely.selectFrom('api_routes').selectAll().orderBy('name').execute();
  return rows.map((r) => ({
    name: r.name,
    version: Number(r.version),
    definition: JSON.parse(r.definition) as unknown,
    updatedBy: r.updated_by,
    updatedAt: r.updated_at,
  }));
}

export async function getApiRoute(db: Db, name: string): Promise<ApiRouteRow | undefined> {
  const r = await db.kysely.selectFrom('api_routes').selectAll().where('name', '=', name).executeTakeFirst();
  return r && { name: r.name, version: Number(r.version), definition: JSON.parse(r.definition) as unknown, updatedBy: r.updated_by, updatedAt: r.updated_at };
}

/** The outcome of a write: the new version, or why there is none. */
export type RouteWrite = { ok: true; version: number } | { ok: false; reason: 'exists' | 'missing' | 'stale' };

/**
 * Create (`op: create`, the name must be free), replace (`update`, it must exist) or remove
 * (`delete`) one API route, with its version row and the raised counter in one transaction.
 * `expectVersion`: the version the client read; another one now is `stale` (a lost update).
 */
export async function writeApiRoute(
  db: Db,
  w: { op: 'create' | 'update' | 'delete'; name: string; definition?: unknown; actor: string; expectVersion?: number },
  now = new Date(),
): Promise<RouteWrite> {
  return transact(db, async (trx) => {
    // The counter first: on PostgreSQL its row lock orders concurrent writers, so two changes
    // of one route cannot both read the same current version.
    await trx.updateTable('routes_state').set((eb) => ({ version: eb('version', '+', 1) })).where('id', '=', 1).execute();
    const current = await trx.selectFrom('api_routes').select('version').where('name', '=', w.name).executeTakeFirst();
    if (w.op === 'create' && current) return { ok: false, reason: 'exists' } as const;
    if (w.op !== 'create' && !current) return { ok: false, reason: 'missing' } as const;
    if (current && w.expectVersion !== undefined && Number(current.version) !== w.expectVersion) return { ok: false, reason: 'stale' } as const;
    // Versions go on across a delete and a new create of the same name: history stays one list.
    const last = await trx.selectFrom('route_versions').select((eb) => eb.fn.max('version').as('v')).where('name', '=', w.name).executeTakeFirst();
    const version = Number(last?.v ?? 0) + 1;
    const at = now.toISOString();
    const definition = w.op === 'delete' ? null : JSON.stringify(w.definition);
    await trx.insertInto('route_versions').values({ name: w.name, version, op: w.op, definition, actor: w.actor, at }).execute();
    if (w.op === 'delete') {
      await trx.deleteFrom('api_routes').where('name', '=', w.name).execute();
    } else if (w.op === 'create') {
      await trx.insertInto('api_routes').values({ name: w.name, version, definition: definition!, updated_by: w.actor, updated_at: at }).execute();
    } else {
      await trx.updateTable('api_routes').set({ version, definition: definition!, updated_by: w.actor, updated_at: at }).where('name', '=', w.name).execute();
    }
    return { ok: true, version } as const;
  });
}

/** Every version of a route, newest first (also those of a deleted route). */
export async function listRouteVersions(db: Db, name: string): Promise<RouteVersion[]> {
  const rows = await db.kysely.selectFrom('route_versions').selectAll().where('name', '=', name).orderBy('version', 'desc').execute();
  return rows.map((r) => ({
    name: r.name,
    version: Number(r.version),
    op: r.op,
    definition: r.definition === null ? null : (JSON.parse(r.definition) as unknown),
    actor: r.actor,
    at: r.at,
  }));
}
