import type { FastifyInstance } from 'fastify';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import { moveDocument, requireDocument, searchDocuments } from '../../domain/folders/documents.js';
import { parseClark } from '../../domain/objects/properties.js';
import { deleteObject, requireObject } from '../../domain/objects/store.js';
import { BYTES_CSP, cleanFilename, contentDisposition, safeMediaType } from '../content-headers.js';
import { defineRoute } from '../route.js';
import type { ApiDeps } from '../deps.js';
import { documentOf, DocumentView, nextAfter, ObjectId, ObjectName, ObjectParams } from './object-views.js';

const DOCUMENTS = '/api/v1/documents';

const DocumentListQuery = z.strictObject({
  folder: ObjectId.optional().describe('only documents in this folder'),
  property: z.string().min(1).max(512).optional().describe('filter by this property, in Clark notation: {urn:postroom:mail-header}subject'),
  value: z.string().max(998).optional().describe('the value the property must have (with `property`)'),
  match: z.enum(['exact', 'contains']).default('exact').describe('exact: the whole value; contains: a case-insensitive substring'),
  after: ObjectId.optional().describe('the `next` of the previous page'),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

const DocumentList = z.object({ items: z.array(DocumentView), next: z.number().int().nullable() });

const DocumentMove = z.strictObject({
  folder: ObjectId.optional().describe('move into this folder'),
  name: ObjectName.optional().describe('rename; must be free in the target folder'),
});

/** Documents: list and search by property, read, download, move/rename, delete. */
export async function documentRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const db = deps.db.kysely;
  defineRoute(
    app,
    {
      method: 'GET',
      url: DOCUMENTS,
      summary: 'List documents, or search them by a property',
      description:
        'With `property` and `value`, only documents whose property has that value (`match=exact`) or contains it ' +
        '(`match=contains`, case-insensitive). Filed mail carries `{urn:postroom:mail-header}subject`, `from`, `message-id`, … and `contentType`.',
      tags: ['documents'],
      query: DocumentListQuery,
      responses: { 200: { description: 'one page of documents', schema: DocumentList } },
    },
    async ({ query }) => {
      if ((query.property === undefined) !== (query.value === undefined)) throw mailError('INVALID_REQUEST', 'query.property and query.value go together');
      const properties = query.property !== undefined ? [{ ...parseClark(query.property), value: query.value!, match: query.match }] : [];
      const rows = await searchDocuments(db, { folder: query.folder, properties, after: query.after, limit: query.limit + 1 });
      const page = nextAfter(rows, query.limit);
      return { items: page.items.map(documentOf), next: page.next };
    },
  );

  defineRoute(
    app,
    { method: 'GET', url: `${DOCUMENTS}/:id`, summary: 'One document with its properties', tags: ['documents'], params: ObjectParams, responses: { 200: { description: 'the document', schema: DocumentView } } },
    async ({ params }) => documentOf(await requireDocument(db, params.id)),
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: `${DOCUMENTS}/:id/content`,
      summary: "A document's bytes, with its Content-Type, as a download under its name",
      tags: ['documents'],
      params: ObjectParams,
      responses: { 200: { description: 'the bytes', contentType: 'application/octet-stream' } },
    },
    async ({ params, request, reply }) => {
      const d = await requireDocument(db, params.id);
      const body = request.method === 'HEAD' ? Readable.from([]) : await deps.blobs.open(d.sha256);
      return reply
        .header('content-type', safeMediaType(d.contentType))
        .header('content-length', String(d.size))
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', BYTES_CSP)
        .header('content-disposition', contentDisposition('attachment', cleanFilename(d.name, `document-${d.id}`)))
        .send(body);
    },
  );

  defineRoute(
    app,
    {
      method: 'PATCH',
      url: `${DOCUMENTS}/:id`,
      summary: 'Move a document to another folder and/or rename it',
      tags: ['documents'],
      params: ObjectParams,
      body: DocumentMove,
      responses: { 200: { description: 'the document where it is now', schema: DocumentView } },
    },
    async ({ params, body }) => documentOf(await moveDocument(deps.db, params.id, body)),
  );

  defineRoute(
    app,
    { method: 'DELETE', url: `${DOCUMENTS}/:id`, summary: 'Delete a document', tags: ['documents'], params: ObjectParams, responses: { 204: { description: 'deleted' } } },
    async ({ params, reply }) => {
      await requireObject(db, params.id, 'document');
      await deleteObject(db, params.id);
      return reply.code(204).send();
    },
  );
}
