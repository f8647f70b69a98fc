import { sql, type Kysely, type SqlBool, type Transaction } from 'kysely';
import { mailError } from '../../core/errors.js';
import type { Database } from '../../store/schema.js';

// store.ts's Q, spelled out: store.ts imports this module (settings copied as properties).
type Q = Kysely<Database> | Transaction<Database>;

/**
 * Namespaced properties of objects, written in Clark notation as WebDAV does
 * (`{urn:postroom:mail-header}subject`, RFC 4918 §4.3): searchable by exact value or by a
 * case-insensitive substring, on SQLite and PostgreSQL alike.
 */

export interface Property {
  namespace: string;
  name: string;
  value: string;
}

/** The namespace of the mail headers a folder records on each document it collects. */
export const MAIL_HEADER_NS = 'urn:postroom:mail-header';
/** Postroom's own properties (contentType, messageId of the source, …). */
export const POSTROOM_NS = 'urn:postroom:property';

/** OpenGroupware Coils' namespace for the mail headers it records on filed documents. */
export const COILS_MAIL_HEADER_NS = 'us.opengroupware.mail.header';

/**
 * A property name as an operator coming from OpenGroupware Coils writes it, in Postroom's
 * namespaces (Postroom's own stay the default and what is stored and shown):
 * `{us.opengroupware.mail.header}subject` → `{urn:postroom:mail-header}subject`;
 * `{}contentType` (Coils' empty namespace) → `{urn:postroom:mail-header}contentType`, where the
 * collected part's type is kept; any other `{}name` (`{}collectMIMEType`) → `{urn:postroom:property}name`.
 */
export function canonicalName(p: { namespace: string; name: string }): { namespace: string; name: string } {
  if (p.namespace === COILS_MAIL_HEADER_NS) return { namespace: MAIL_HEADER_NS, name: p.name };
  if (p.namespace === '') return { namespace: p.name === 'contentType' ? MAIL_HEADER_NS : POSTROOM_NS, name: p.name };
  return p;
}

/**
 * `{ns}name` → { namespace, name }; a bare name is in POSTROOM_NS; the seed's names are
 * accepted as aliases (canonicalName). INVALID_REQUEST when malformed.
 */
export function parseClark(s: string): { namespace: string; name: string } {
  const m = /^\{([^{}]*)\}(.+)$/.exec(s);
  if (m) return canonicalName({ namespace: m[1], name: m[2] });
  if (/^[^{}]+$/.test(s)) return { namespace: POSTROOM_NS, name: s };
  throw mailError('INVALID_REQUEST', `property '${s}': write it as {namespace}name`);
}

/** { namespace, name } → `{ns}name`. */
export function clark(p: { namespace: string; name: string }): string {
  return `{${p.namespace}}${p.name}`;
}

// PostgreSQL text refuses NUL; a header could carry one through an encoded word.
const noNul = (s: string) => s.replace(/\u0000/g, '\ufffd');

/** Set properties of an object (replacing values of the same namespace + name). */
export async function setProperties(db: Q, object: number, props: Property[]): Promise<void> {
  if (!props.length) return;
  const rows = props.map((p) => ({ object, namespace: p.namespace, name: p.name, value: noNul(p.value) }));
  await db
    .insertInto('object_properties')
    .values(rows)
    .onConflict((oc) => oc.columns(['object', 'namespace', 'name']).doUpdateSet((eb) => ({ value: eb.ref('excluded.value') })))
    .execute();
}

/** Remove one property; resolves true when it existed. */
export async function deleteProperty(db: Q, object: number, p: { namespace: string; name: string }): Promise<boolean> {
  const r = await db
    .deleteFrom('object_properties')
    .where('object', '=', object)
    .where('namespace', '=', p.namespace)
    .where('name', '=', p.name)
    .executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** Every property of some objects, by object id. */
export async function getProperties(db: Q, objects: number[]): Promise<Map<number, Property[]>> {
  const out = new Map<number, Property[]>(objects.map((id) => [id, []]));
  if (!objects.length) return out;
  const rows = await db
    .selectFrom('object_properties')
    .selectAll()
    .where('object', 'in', objects)
    .orderBy('namespace')
    .orderBy('name')
    .execute();
  for (const r of rows) out.get(Number(r.object))?.push({ namespace: r.namespace, name: r.name, value: r.value });
  return out;
}

export interface PropertyFilter {
  namespace: string;
  name: string;
  value: string;
  /** exact: the whole value, as stored; contains: a substring, case-insensitive. */
  match: 'exact' | 'contains';
}

/**
 * A where-condition on `objects.id` for one property filter, as an EXISTS sub-query so filters
 * combine with AND and an object with many properties is not returned twice.
 */
export function propertyCondition(f: PropertyFilter) {
  // lower() + LIKE with a named escape works the same on SQLite and PostgreSQL (whose LIKE is
  // case-sensitive); SQLite has no default escape character.
  const like = `%${f.value.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const valueTest =
    f.match === 'exact' ? sql<SqlBool>`p.value = ${f.value}` : sql<SqlBool>`lower(p.value) like ${like} escape '\\'`;
  return sql<SqlBool>`exists (select 1 from object_properties p where p.object = objects.id and p.namespace = ${f.namespace} and p.name = ${f.name} and ${valueTest})`;
}
