import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import { getWorkPackage, listAttachments, listJournals, listWorkPackages } from '../../domain/tracker/read.js';
import { findProject } from '../../domain/tracker/setup.js';
import { tq } from '../../domain/tracker/tables.js';
import type { AttachmentRecord } from '../../domain/tracker/work-packages.js';
import { BYTES_CSP, cleanFilename, contentDisposition, safeMediaType } from '../content-headers.js';
import { defineRoute } from '../route.js';
import type { ApiDeps } from '../deps.js';
import { TRACKER, WorkPackageDetail, WorkPackageView, WpListQuery, WpParams } from './tracker-views.js';

const WPS = `${TRACKER}/work-packages`;

function attachmentOf(a: AttachmentRecord) {
  const { workPackage, ...rest } = a;
  return { ...rest, url: `${WPS}/${workPackage}/attachments/${a.id}` };
}

/** Work packages: list, read with journal and attachments, download an attachment, delete. */
export async function trackerWorkPackageRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const q = tq(deps.db.kysely);
  const find = async (id: number) => (await getWorkPackage(q, id)) ?? Promise.reject(mailError('NOT_FOUND', `No work package ${id}`));

  defineRoute(
    app,
    {
      method: 'GET',
      url: WPS,
      summary: 'Work packages by id, optionally of one project',
      tags: ['tracker'],
      query: WpListQuery,
      responses: { 200: { description: 'a page', schema: z.object({ items: z.array(WorkPackageView), next: z.number().int().nullable() }) } },
    },
    async ({ query }) => {
      let project: number | undefined;
      if (query.project) {
        const p = await findProject(q, query.project);
        if (!p) throw mailError('NOT_FOUND', `No project ${query.project}`);
        project = p.id;
      }
      const rows = await listWorkPackages(q, { project, after: query.after, limit: query.limit + 1 });
      const items = rows.slice(0, query.limit);
      return { items, next: rows.length > query.limit ? items[items.length - 1].id : null };
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: `${WPS}/:id`,
      summary: 'A work package with its journal (who, when, what changed, notes) and attachments',
      tags: ['tracker'],
      params: WpParams,
      responses: { 200: { description: 'the work package', schema: WorkPackageDetail } },
    },
    async ({ params }) => {
      const wp = await find(params.id);
      return { ...wp, journals: await listJournals(q, wp.id), attachments: (await listAttachments(q, wp.id)).map(attachmentOf) };
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: `${WPS}/:id/attachments/:attachment`,
      summary: "An attachment's bytes, as a download under its sanitised name",
      tags: ['tracker'],
      params: WpParams.extend({ attachment: z.string().min(1).max(64) }),
      responses: { 200: { description: 'the bytes', contentType: 'application/octet-stream' } },
    },
    async ({ params, request, reply }) => {
      const a = (await listAttachments(q, params.id)).find((x) => x.id === params.attachment);
      if (!a) throw mailError('NOT_FOUND', `No attachment ${params.attachment} of work package ${params.id}`);
      const body = request.method === 'HEAD' ? Readable.from([]) : await deps.blobs.open(a.sha256);
      return reply
        .header('content-type', safeMediaType(a.contentType))
        .header('content-length', String(a.size))
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', BYTES_CSP)
        .header('content-disposition', contentDisposition('attachment', cleanFilename(a.filename, `attachment-${a.id}`)))
        .send(body);
    },
  );

  defineRoute(
    app,
    { method: 'DELETE', url: `${WPS}/:id`, summary: 'Delete a work package with its journal and attachments', tags: ['tracker'], params: WpParams, responses: { 204: { description: 'deleted' } } },
    async ({ params, reply }) => {
      await find(params.id);
      await q.deleteFrom('objects').where('id', '=', params.id).where('kind', '=', 'work_package').execute();
      return reply.code(204).send();
    },
  );
}
