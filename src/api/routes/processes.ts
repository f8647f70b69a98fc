import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import { getProcess, listProcesses } from '../../domain/workflows/store.js';
import { defineRoute } from '../route.js';
import type { ApiDeps } from '../deps.js';
import { ObjectId, ObjectParams, processOf, ProcessView } from './object-views.js';

const PROCESSES = '/api/v1/processes';
const ProcessListQuery = z.strictObject({
  workflow: ObjectId.optional().describe('only runs of this workflow'),
  state: z.enum(['queued', 'running', 'completed', 'failed']).optional(),
  message: z.string().max(64).regex(/^[0-9a-z_-]+$/i).optional().describe('only runs started by this kept message'),
  before: ObjectId.optional().describe('the `next` of the previous page'),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});
const ProcessList = z.object({ items: z.array(ProcessView), next: z.number().int().nullable() });

/** Processes: the runs of workflows, newest first; each one's output is a document. */
export async function processRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const db = deps.db.kysely;
  defineRoute(
    app,
    {
      method: 'GET',
      url: PROCESSES,
      summary: 'Workflow runs, newest first',
      tags: ['workflows'],
      query: ProcessListQuery,
      responses: { 200: { description: 'one page of processes', schema: ProcessList } },
    },
    async ({ query }) => {
      const rows = await listProcesses(db, { ...query, limit: query.limit + 1 });
      const items = rows.slice(0, query.limit);
      return { items: items.map(processOf), next: rows.length > query.limit ? items[items.length - 1].id : null };
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: `${PROCESSES}/:id`,
      summary: 'One workflow run: state, exit code or status, output document',
      description: 'The output bytes are at /api/v1/documents/{output}/content.',
      tags: ['workflows'],
      params: ObjectParams,
      responses: { 200: { description: 'the process', schema: ProcessView } },
    },
    async ({ params }) => {
      const p = await getProcess(db, params.id);
      if (!p) throw mailError('NOT_FOUND', `No process ${params.id}`);
      return processOf(p);
    },
  );
}
