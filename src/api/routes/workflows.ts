import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { deleteObject } from '../../domain/objects/store.js';
import { workflowDefinition } from '../../domain/workflows/definition.js';
import { createWorkflow, getWorkflow, listWorkflows, updateWorkflow } from '../../domain/workflows/store.js';
import { mailError } from '../../core/errors.js';
import { defineRoute } from '../route.js';
import type { ApiDeps } from '../deps.js';
import { ObjectParams, workflowOf, WorkflowView } from './object-views.js';

const WORKFLOWS = '/api/v1/workflows';
const WorkflowList = z.object({ items: z.array(WorkflowView) });
const WorkflowUpdate = workflowDefinition.omit({ name: true });

/** Workflows: define (name, input, action), list, read, change, delete. */
export async function workflowRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const db = deps.db;
  const show = (w: Parameters<typeof workflowOf>[0]) => workflowOf(w, deps.objects);
  const find = async (id: number) => {
    const w = await getWorkflow(db.kysely, id);
    if (!w) throw mailError('NOT_FOUND', `No workflow ${id}`);
    return w;
  };

  defineRoute(
    app,
    { method: 'GET', url: WORKFLOWS, summary: 'Every workflow, by name', tags: ['workflows'], responses: { 200: { description: 'the workflows', schema: WorkflowList } } },
    async () => ({ items: (await listWorkflows(db.kysely)).map(show) }),
  );

  defineRoute(
    app,
    {
      method: 'POST',
      url: WORKFLOWS,
      summary: 'Define a workflow',
      description:
        'Action `{ command: [argv…] }` runs the program without a shell, the input on stdin, metadata in POSTROOM_* variables; ' +
        'exit 0 completes the process, exit 75 or a timeout is retried, other exits fail it. Action `{ url }` POSTs the input. ' +
        'Mail starts it at PREFIX+wf+NAME@DOMAIN once `network` (or an SMTP user) has `r` on it.',
      tags: ['workflows'],
      body: workflowDefinition,
      responses: { 201: { description: 'the new workflow', schema: WorkflowView } },
    },
    async ({ body, reply }) => reply.code(201).send(show(await createWorkflow(db, body))),
  );

  defineRoute(
    app,
    { method: 'GET', url: `${WORKFLOWS}/:id`, summary: 'One workflow', tags: ['workflows'], params: ObjectParams, responses: { 200: { description: 'the workflow', schema: WorkflowView } } },
    async ({ params }) => show(await find(params.id)),
  );

  defineRoute(
    app,
    {
      method: 'PUT',
      url: `${WORKFLOWS}/:id`,
      summary: "Replace a workflow's input and action (its name is an address and stays)",
      tags: ['workflows'],
      params: ObjectParams,
      body: WorkflowUpdate,
      responses: { 200: { description: 'the workflow as it is now', schema: WorkflowView } },
    },
    async ({ params, body }) => {
      await find(params.id);
      return show(await updateWorkflow(db, params.id, body));
    },
  );

  defineRoute(
    app,
    { method: 'DELETE', url: `${WORKFLOWS}/:id`, summary: 'Delete a workflow and its processes', tags: ['workflows'], params: ObjectParams, responses: { 204: { description: 'deleted' } } },
    async ({ params, reply }) => {
      await find(params.id);
      await deleteObject(db.kysely, params.id);
      return reply.code(204).send();
    },
  );
}
