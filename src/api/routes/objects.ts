import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { FOLDER_SETTING_NAMES, folderSettingsFrom, settingFromProperty } from '../../domain/folders/settings.js';
import { deleteProperty, getProperties, parseClark, POSTROOM_NS, setProperties, type Property } from '../../domain/objects/properties.js';
import { listObjects, OBJECT_KINDS, requireObject, updateObject, type ObjectRecord } from '../../domain/objects/store.js';
import { mailError } from '../../core/errors.js';
import { defineRoute } from '../route.js';
import type { ApiDeps } from '../deps.js';
import { nextAfter, ObjectId, objectOf, ObjectParams, ObjectView, propertyOf, PropertyView } from './object-views.js';

const PropertyList = z.object({ items: z.array(PropertyView) });
const PropertySet = z.strictObject({
  properties: z
    .record(z.string().min(1).max(512).describe('{namespace}name'), z.string().max(64 * 1024))
    .describe('properties to set, by Clark name; existing ones of the same name are replaced'),
});
const many = <T extends z.ZodType>(t: T) => z.union([t, z.array(t).max(20)]).optional();

const ObjectSearchQuery = z.strictObject({
  kind: many(z.enum(OBJECT_KINDS)).describe('only objects of this kind; repeat for several (default: every kind)'),
  parent: ObjectId.optional().describe('only objects in this folder (or the processes of this workflow)'),
  name: z.string().min(1).max(255).optional().describe('the name, whole (match=exact) or a substring (match=contains)'),
  property: many(z.string().min(1).max(512)).describe(
    'a property in Clark notation ({urn:postroom:mail-header}subject; Coils spellings such as {us.opengroupware.mail.header}subject or {}collectMIMEType are aliases); repeat with `value` for several, all must hold',
  ),
  value: many(z.string().max(998)).describe('the value of the property at the same position'),
  match: z.enum(['exact', 'contains']).default('exact').describe('exact: the whole value; contains: a case-insensitive substring'),
  after: ObjectId.optional().describe('the `next` of the previous page'),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

const ObjectHit = ObjectView.extend({ objectProperties: z.array(PropertyView).describe("the object's namespaced properties") });
const ObjectSearchList = z.object({ items: z.array(ObjectHit), next: z.number().int().nullable() });

const PropertyParams = z.strictObject({ id: ObjectId, name: z.string().min(1).max(512).describe('{namespace}name, URL-encoded') });

const isSetting = (o: ObjectRecord, p: { namespace: string; name: string }): p is { namespace: string; name: (typeof FOLDER_SETTING_NAMES)[number] } =>
  o.kind === 'folder' && p.namespace === POSTROOM_NS && (FOLDER_SETTING_NAMES as readonly string[]).includes(p.name);

/**
 * A folder's settings written as properties (`{}collectMIMEType`, as OpenGroupware Coils sets
 * it on a folder) change the settings filing reads, checked as in PATCH /folders; the rest are
 * plain properties. `drop`: settings to remove.
 */
async function writeProperties(db: ApiDeps['db']['kysely'], o: ObjectRecord, props: Property[], drop: string[] = []): Promise<void> {
  const settings = props.filter((p) => isSetting(o, p));
  if (settings.length || drop.length) {
    const next: Record<string, unknown> = { ...o.properties };
    for (const d of drop) delete next[d];
    for (const p of settings) next[p.name] = settingFromProperty(p.name as (typeof FOLDER_SETTING_NAMES)[number], p.value);
    await updateObject(db, o.id, { properties: folderSettingsFrom(next) });
  }
  await setProperties(db, o.id, props.filter((p) => !isSetting(o, p)));
}

/** Any object by its number (what PREFIX+<id>@ names), and the namespaced properties of any object. */
export async function objectRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const db = deps.db.kysely;
  defineRoute(
    app,
    {
      method: 'GET',
      url: '/api/v1/objects',
      summary: 'Search objects of every kind by name and properties (folders, documents, workflows, processes, groups, posts)',
      description:
        'OpenGroupware zOGI searchForObjects over REST: filters combine with AND. A folder\'s settings are properties too ' +
        '(`{urn:postroom:property}collectMIMEType`, Coils: `{}collectMIMEType`), filed documents carry `{urn:postroom:mail-header}…`.',
      tags: ['objects'],
      query: ObjectSearchQuery,
      responses: { 200: { description: 'one page of objects, by id', schema: ObjectSearchList } },
    },
    async ({ query }) => {
      const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : [v].flat() as T[]);
      const names = list(query.property);
      const values = list(query.value);
      if (names.length !== values.length) throw mailError('INVALID_REQUEST', 'query.property and query.value go together, one value for each property');
      const properties = names.map((n, i) => ({ ...parseClark(n), value: values[i], match: query.match }));
      const rows = await listObjects(db, {
        kind: list(query.kind),
        parent: query.parent,
        ...(query.name === undefined ? {} : query.match === 'exact' ? { name: query.name } : { nameContains: query.name }),
        properties,
        after: query.after,
        limit: query.limit + 1,
      });
      const page = nextAfter(rows, query.limit);
      const props = await getProperties(db, page.items.map((o) => o.id));
      return { items: page.items.map((o) => ({ ...objectOf(o, deps.objects), objectProperties: (props.get(o.id) ?? []).map(propertyOf) })), next: page.next };
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: '/api/v1/objects/:id',
      summary: 'Any built-in object by id: folder, document, workflow or process',
      tags: ['objects'],
      params: ObjectParams,
      responses: { 200: { description: 'the object', schema: ObjectView } },
    },
    async ({ params }) => objectOf(await requireObject(db, params.id), deps.objects),
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: '/api/v1/objects/:id/properties',
      summary: "An object's namespaced properties",
      tags: ['objects'],
      params: ObjectParams,
      responses: { 200: { description: 'the properties', schema: PropertyList } },
    },
    async ({ params }) => {
      await requireObject(db, params.id);
      return { items: ((await getProperties(db, [params.id])).get(params.id) ?? []).map(propertyOf) };
    },
  );

  defineRoute(
    app,
    {
      method: 'PATCH',
      url: '/api/v1/objects/:id/properties',
      summary: 'Set namespaced properties of an object',
      tags: ['objects'],
      params: ObjectParams,
      body: PropertySet,
      responses: { 200: { description: 'every property of the object now', schema: PropertyList } },
    },
    async ({ params, body }) => {
      const o = await requireObject(db, params.id);
      await writeProperties(
        db,
        o,
        Object.entries(body.properties).map(([k, value]) => ({ ...parseClark(k), value })),
      );
      return { items: ((await getProperties(db, [params.id])).get(params.id) ?? []).map(propertyOf) };
    },
  );

  defineRoute(
    app,
    {
      method: 'DELETE',
      url: '/api/v1/objects/:id/properties/:name',
      summary: 'Remove one property',
      tags: ['objects'],
      params: PropertyParams,
      responses: { 204: { description: 'removed (or there was none)' } },
    },
    async ({ params, reply }) => {
      const o = await requireObject(db, params.id);
      const p = parseClark(params.name);
      if (isSetting(o, p)) await writeProperties(db, o, [], [p.name]);
      else await deleteProperty(db, params.id, p);
      return reply.code(204).send();
    },
  );
}
