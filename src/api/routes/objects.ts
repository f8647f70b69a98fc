import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { deleteProperty, getProperties, parseClark, setProperties } from '../../domain/objects/properties.js';
import { requireObject } from '../../domain/objects/store.js';
import { defineRoute } from '../route.js';
import type { ApiDeps } from '../deps.js';
import { ObjectId, objectOf, ObjectParams, ObjectView, propertyOf, PropertyView } from './object-views.js';

const PropertyList = z.object({ items: z.array(PropertyView) });
const PropertySet = z.strictObject({
  properties: z
    .record(z.string().min(1).max(512).describe('{namespace}name'), z.string().max(64 * 1024))
    .describe('properties to set, by Clark name; existing ones of the same name are replaced'),
});
const PropertyParams = z.strictObject({ id: ObjectId, name: z.string().min(1).max(512).describe('{namespace}name, URL-encoded') });

/** Any object by its number (what PREFIX+<id>@ names), and the namespaced properties of any object. */
export async function objectRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const db = deps.db.kysely;
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
      await requireObject(db, params.id);
      await setProperties(
        db,
        params.id,
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
      await requireObject(db, params.id);
      await deleteProperty(db, params.id, parseClark(params.name));
      return reply.code(204).send();
    },
  );
}
