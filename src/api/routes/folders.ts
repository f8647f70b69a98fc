import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import { folderSettings, folderSettingsFrom } from '../../domain/folders/settings.js';
import { createObject, deleteObject, isUniqueViolation, listObjects, requireObject, updateObject } from '../../domain/objects/store.js';
import { defineRoute } from '../route.js';
import type { ApiDeps } from '../deps.js';
import { nextAfter, ObjectId, ObjectName, objectOf, ObjectParams, ObjectView } from './object-views.js';

const FOLDERS = '/api/v1/folders';

/** A folder's settings: the known keys are checked, others kept as given. */
const Settings = folderSettings.passthrough();

const FolderCreate = z.strictObject({
  name: ObjectName,
  parent: ObjectId.nullable().optional().describe('parent folder id; unset: a top-level folder'),
  properties: Settings.default({}).describe(
    'collectMIMEType (message/rfc822, text/plain, a type, image/*, or a list), keepUnmatched; also spelled {}collectMIMEType (OpenGroupware Coils) or {urn:postroom:property}collectMIMEType',
  ),
});

const FolderPatch = z.strictObject({
  name: ObjectName.optional(),
  parent: ObjectId.nullable().optional(),
  properties: Settings.optional().describe('replaces the settings'),
});

const FolderListQuery = z.strictObject({
  parent: ObjectId.optional().describe('only the folders in this folder'),
  after: ObjectId.optional().describe('the `next` of the previous page'),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

const FolderList = z.object({ items: z.array(ObjectView), next: z.number().int().nullable() });

/** Folders: create, list, read, change settings or place, delete (with their documents). */
export async function folderRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const db = deps.db.kysely;
  const show = (o: Parameters<typeof objectOf>[0]) => objectOf(o, deps.objects);
  const checkParent = async (parent: number | null | undefined) => {
    if (parent !== undefined && parent !== null) await requireObject(db, parent, 'folder');
  };

  defineRoute(
    app,
    { method: 'GET', url: FOLDERS, summary: 'List folders by id', tags: ['folders'], query: FolderListQuery, responses: { 200: { description: 'one page of folders', schema: FolderList } } },
    async ({ query }) => {
      const rows = await listObjects(db, { kind: 'folder', parent: query.parent, after: query.after, limit: query.limit + 1 });
      const page = nextAfter(rows, query.limit);
      return { items: page.items.map(show), next: page.next };
    },
  );

  defineRoute(
    app,
    {
      method: 'POST',
      url: FOLDERS,
      summary: 'Create a folder',
      description: 'Mail reaches it at PREFIX+<id>@DOMAIN once the `network` principal (or an SMTP user) is granted rw on it.',
      tags: ['folders'],
      body: FolderCreate,
      responses: { 201: { description: 'the new folder', schema: ObjectView } },
    },
    async ({ body, reply }) => {
      await checkParent(body.parent);
      try {
        const o = await createObject(db, { kind: 'folder', name: body.name, parent: body.parent ?? null, properties: folderSettingsFrom(body.properties) });
        return reply.code(201).send(show(o));
      } catch (err) {
        if (isUniqueViolation(err)) throw mailError('INVALID_REQUEST', `the name '${body.name}' is taken in that folder`);
        throw err;
      }
    },
  );

  defineRoute(
    app,
    { method: 'GET', url: `${FOLDERS}/:id`, summary: 'One folder', tags: ['folders'], params: ObjectParams, responses: { 200: { description: 'the folder', schema: ObjectView } } },
    async ({ params }) => show(await requireObject(db, params.id, 'folder')),
  );

  defineRoute(
    app,
    {
      method: 'PATCH',
      url: `${FOLDERS}/:id`,
      summary: 'Rename a folder, move it, or replace its settings',
      tags: ['folders'],
      params: ObjectParams,
      body: FolderPatch,
      responses: { 200: { description: 'the folder as it is now', schema: ObjectView } },
    },
    async ({ params, body }) => {
      await requireObject(db, params.id, 'folder');
      await checkParent(body.parent);
      if (body.parent === params.id) throw mailError('INVALID_REQUEST', 'a folder cannot be its own parent');
      return show(await updateObject(db, params.id, { ...body, properties: body.properties && folderSettingsFrom(body.properties) }));
    },
  );

  defineRoute(
    app,
    {
      method: 'DELETE',
      url: `${FOLDERS}/:id`,
      summary: 'Delete a folder and everything in it',
      tags: ['folders'],
      params: ObjectParams,
      responses: { 204: { description: 'deleted' } },
    },
    async ({ params, reply }) => {
      await requireObject(db, params.id, 'folder');
      await deleteObject(db, params.id);
      return reply.code(204).send();
    },
  );
}
