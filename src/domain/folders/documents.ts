import { sql } from 'kysely';
import { mailError } from '../../core/errors.js';
import type { Db } from '../../store/db.js';
import { POSTROOM_NS, getProperties, propertyCondition, setProperties, type Property, type PropertyFilter } from '../objects/properties.js';
import { isUniqueViolation, requireObject, updateObject, type ObjectRecord, type Q } from '../objects/store.js';

/** A document: an object (name, parent folder) with bytes in the blob store and properties. */
export interface DocumentRecord {
  id: number;
  folder: number;
  name: string;
  sha256: string;
  size: number;
  contentType: string;
  message: string | null;
  createdAt: string;
  updatedAt: string;
  properties: Property[];
}

export interface NewDocument {
  name: string;
  sha256: string;
  size: number;
  contentType: string;
  properties?: Property[];
}

/** `name`, then `name-2.ext`, `name-3.ext`, … */
function candidate(name: string, n: number): string {
  if (n === 1) return name;
  const dot = name.lastIndexOf('.');
  return dot > 0 ? `${name.slice(0, dot)}-${n}${name.slice(dot)}` : `${name}-${n}`;
}

/** The first of name, name-2, name-3 … that no object in the folder has. */
async function freeName(db: Q, folder: number, name: string): Promise<string> {
  const dot = name.lastIndexOf('.');
  const stem = dot > 0 ? name.slice(0, dot) : name;
  const rows = await db
    .selectFrom('objects')
    .select('name')
    .where('parent', '=', folder)
    .where(sql<boolean>`substr(name, 1, ${stem.length}) = ${stem}`)
    .execute();
  const taken = new Set(rows.map((r) => r.name));
  for (let n = 1; ; n++) if (!taken.has(candidate(name, n))) return candidate(name, n);
}

/**
 * File documents into a folder in one transaction, each under a unique name (Message-ID +
 * time, then -2, -3 … on a clash). With a delivery id it is idempotent: a delivery that filed
 * before (its worker died before recording success) gets the same documents back, not copies.
 */
export async function fileDocuments(
  db: Db,
  folder: number,
  docs: NewDocument[],
  source: { message?: string; delivery?: string } = {},
): Promise<DocumentRecord[]> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await db.kysely.transaction().execute(async (trx) => {
        if (source.delivery) {
          const prior = await trx.selectFrom('documents').select('id').where('delivery', '=', source.delivery).execute();
          if (prior.length) return getDocuments(trx, prior.map((r) => Number(r.id)));
        }
        const ids: number[] = [];
        for (const d of docs) {
          const name = await freeName(trx, folder, d.name);
          const now = new Date().toISOString();
          const { id } = await trx
            .insertInto('objects')
            .values({ kind: 'document', name, parent: folder, properties: '{}', created_at: now, updated_at: now })
            .returning('id')
            .executeTakeFirstOrThrow();
          const docId = Number(id);
          await trx
            .insertInto('documents')
            .values({ id: docId, sha256: d.sha256, size: d.size, content_type: d.contentType, message: source.message ?? null, delivery: source.delivery ?? null })
            .execute();
          const props = [...(d.properties ?? [])];
          if (source.message) props.push({ namespace: POSTROOM_NS, name: 'message', value: source.message });
          await setProperties(trx, docId, props);
          ids.push(docId);
        }
        return getDocuments(trx, ids);
      });
    } catch (err) {
      // Another delivery took the same name between our look and our insert: look again.
      if (isUniqueViolation(err) && attempt < 5) continue;
      throw err;
    }
  }
}

function baseQuery(db: Q) {
  return db
    .selectFrom('objects')
    .innerJoin('documents', 'documents.id', 'objects.id')
    .select([
      'objects.id as id',
      'objects.kind as kind',
      'objects.name as name',
      'objects.parent as parent',
      'objects.properties as properties',
      'objects.created_at as created_at',
      'objects.updated_at as updated_at',
      'documents.sha256 as sha256',
      'documents.size as size',
      'documents.content_type as content_type',
      'documents.message as message',
    ]);
}

type Row = Awaited<ReturnType<ReturnType<typeof baseQuery>['execute']>>[number];

async function withProperties(db: Q, rows: Row[]): Promise<DocumentRecord[]> {
  const props = await getProperties(db, rows.map((r) => Number(r.id)));
  return rows.map((r) => ({
    id: Number(r.id),
    folder: Number(r.parent),
    name: r.name,
    sha256: r.sha256,
    size: Number(r.size),
    contentType: r.content_type,
    message: r.message,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    properties: props.get(Number(r.id)) ?? [],
  }));
}

/** Documents by id, in the order given (missing ones left out). */
export async function getDocuments(db: Q, ids: number[]): Promise<DocumentRecord[]> {
  if (!ids.length) return [];
  const rows = await baseQuery(db).where('objects.id', 'in', ids).execute();
  const byId = new Map((await withProperties(db, rows)).map((d) => [d.id, d]));
  return ids.flatMap((id) => byId.get(id) ?? []);
}

/** One document, or NOT_FOUND. */
export async function requireDocument(db: Q, id: number): Promise<DocumentRecord> {
  const [d] = Number.isSafeInteger(id) ? await getDocuments(db, [id]) : [];
  if (!d) throw mailError('NOT_FOUND', `No document ${id}`);
  return d;
}

/** A document in a folder by its name, or undefined. */
export async function documentByName(db: Q, folder: number, name: string): Promise<DocumentRecord | undefined> {
  const rows = await baseQuery(db).where('objects.parent', '=', folder).where('objects.name', '=', name).execute();
  return (await withProperties(db, rows))[0];
}

/** Documents filtered by folder and properties (AND), by id; `after` pages. */
export async function searchDocuments(
  db: Q,
  f: { folder?: number; properties?: PropertyFilter[]; after?: number; limit: number },
): Promise<DocumentRecord[]> {
  let q = baseQuery(db).orderBy('objects.id').limit(f.limit);
  if (f.folder !== undefined) q = q.where('objects.parent', '=', f.folder);
  if (f.after !== undefined) q = q.where('objects.id', '>', f.after);
  for (const p of f.properties ?? []) q = q.where(propertyCondition(p));
  return withProperties(db, await q.execute());
}

/** Move a document to another folder and/or rename it; the name must be free there. */
export async function moveDocument(db: Db, id: number, to: { folder?: number; name?: string }): Promise<DocumentRecord> {
  const doc = await requireDocument(db.kysely, id);
  if (to.folder !== undefined) await requireObject(db.kysely, to.folder, 'folder');
  await updateObject(db.kysely, id, { parent: to.folder ?? doc.folder, name: to.name ?? doc.name });
  return requireDocument(db.kysely, id);
}

/** A folder's object record, or NOT_FOUND. */
export function requireFolder(db: Q, id: number): Promise<ObjectRecord> {
  return requireObject(db, id, 'folder');
}

