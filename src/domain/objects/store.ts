import { sql, type Kysely, type SqlBool, type Transaction } from 'kysely';
import { mailError } from '../../core/errors.js';
import type { Database, ObjectsTable } from '../../store/schema.js';
import { POSTROOM_NS, propertyCondition, setProperties, type PropertyFilter } from './properties.js';

/**
 * The objects every built-in kind shares: one numeric id sequence, a kind, a name unique
 * within its parent, and a JSON bag of the object's own settings. Kind-specific rows
 * (documents, workflows, processes) hang off the same id.
 */

export type Q = Kysely<Database> | Transaction<Database>;

export const OBJECT_KINDS = ['folder', 'document', 'workflow', 'process', 'group', 'post'] as const;
export type ObjectKind = (typeof OBJECT_KINDS)[number];

export interface ObjectRecord {
  id: number;
  kind: ObjectKind;
  name: string;
  parent: number | null;
  properties: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

/** A row as the ObjectRecord contract. */
export function toObjectRecord(r: Omit<ObjectsTable, 'id'> & { id: number }): ObjectRecord {
  return {
    id: Number(r.id),
    kind: r.kind as ObjectKind,
    name: r.name,
    parent: r.parent === null ? null : Number(r.parent),
    properties: JSON.parse(r.properties) as Record<string, unknown>,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Whether an error is a unique-constraint violation (SQLite and PostgreSQL word it differently). */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/**
 * Settings of a kind that are also namespaced properties ({urn:postroom:property}NAME, which
 * Coils' `{}NAME` names too), so that a search by property finds a folder by what it collects.
 * The settings JSON stays what filing reads; these rows are a copy written with it.
 */
const SETTING_PROPERTIES: Partial<Record<ObjectKind, readonly string[]>> = { folder: ['collectMIMEType', 'keepUnmatched'] };

/** Write the copies of an object's settings as properties (a list joined with ', '). */
async function mirrorSettings(db: Q, id: number, kind: ObjectKind, settings: Record<string, unknown>): Promise<void> {
  const names = SETTING_PROPERTIES[kind];
  if (!names) return;
  await db.deleteFrom('object_properties').where('object', '=', id).where('namespace', '=', POSTROOM_NS).where('name', 'in', [...names]).execute();
  const rows = names
    .filter((n) => settings[n] !== undefined && settings[n] !== null)
    .map((n) => ({ namespace: POSTROOM_NS, name: n, value: [settings[n]].flat().map(String).join(', ') }));
  await setProperties(db, id, rows);
}

/** Insert an object; resolves with it (its id from the shared sequence). NAME_TAKEN-style clashes throw INVALID_REQUEST. */
export async function createObject(
  db: Q,
  o: { kind: ObjectKind; name: string; parent?: number | null; properties?: Record<string, unknown> },
): Promise<ObjectRecord> {
  const now = new Date().toISOString();
  const row = {
    kind: o.kind,
    name: o.name,
    parent: o.parent ?? null,
    properties: JSON.stringify(o.properties ?? {}),
    created_at: now,
    updated_at: now,
  };
  const { id } = await db.insertInto('objects').values(row).returning('id').executeTakeFirstOrThrow();
  await mirrorSettings(db, Number(id), o.kind, o.properties ?? {});
  return toObjectRecord({ ...row, id: Number(id) });
}

/** One object by id, or undefined. */
export async function getObject(db: Q, id: number): Promise<ObjectRecord | undefined> {
  if (!Number.isSafeInteger(id) || id <= 0) return undefined;
  const r = await db.selectFrom('objects').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? toObjectRecord(r) : undefined;
}

/** One object of a kind, or NOT_FOUND naming what was asked for. */
export async function requireObject(db: Q, id: number, kind?: ObjectKind): Promise<ObjectRecord> {
  const o = await getObject(db, id);
  if (!o || (kind && o.kind !== kind)) throw mailError('NOT_FOUND', `No ${kind ?? 'object'} ${id}`);
  return o;
}

/**
 * Objects filtered by kind(s), parent, name and properties (every filter must hold: zOGI's
 * searchForObjects across folders, documents, workflows and processes), by id ascending;
 * `after` pages. `nameContains`: a case-insensitive substring, `%` and `_` literal.
 */
export async function listObjects(
  db: Q,
  f: { kind?: ObjectKind | ObjectKind[]; parent?: number | null; name?: string; nameContains?: string; properties?: PropertyFilter[]; after?: number; limit: number },
): Promise<ObjectRecord[]> {
  let q = db.selectFrom('objects').selectAll().orderBy('id').limit(f.limit);
  if (Array.isArray(f.kind)) {
    if (f.kind.length) q = q.where('kind', 'in', f.kind);
  } else if (f.kind) q = q.where('kind', '=', f.kind);
  if (f.name !== undefined) q = q.where('name', '=', f.name);
  if (f.nameContains !== undefined) {
    const like = `%${f.nameContains.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    q = q.where(sql<SqlBool>`lower(name) like ${like} escape '\\'`);
  }
  for (const p of f.properties ?? []) q = q.where(propertyCondition(p));
  if (f.parent === null) q = q.where('parent', 'is', null);
  else if (f.parent !== undefined) q = q.where('parent', '=', f.parent);
  if (f.after !== undefined) q = q.where('id', '>', f.after);
  return (await q.execute()).map(toObjectRecord);
}

/** Change name, parent or properties; resolves with the object as it is now. */
export async function updateObject(
  db: Q,
  id: number,
  patch: { name?: string; parent?: number | null; properties?: Record<string, unknown> },
): Promise<ObjectRecord> {
  const set: { name?: string; parent?: number | null; properties?: string; updated_at: string } = {
    updated_at: new Date().toISOString(),
  };
  if (patch.name !== undefined) set.name = patch.name;
  if (patch.parent !== undefined) set.parent = patch.parent;
  if (patch.properties !== undefined) set.properties = JSON.stringify(patch.properties);
  try {
    await db.updateTable('objects').set(set).where('id', '=', id).execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw mailError('INVALID_REQUEST', `the name '${patch.name}' is taken in that folder`);
    throw err;
  }
  const o = await requireObject(db, id);
  if (patch.properties !== undefined) await mirrorSettings(db, id, o.kind, patch.properties);
  return o;
}

/** Delete an object and everything under it (documents of a folder, processes of a workflow). */
export async function deleteObject(db: Q, id: number): Promise<boolean> {
  const r = await db.deleteFrom('objects').where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}
