import { z } from 'zod';
import type { Target } from '../core/delivery.js';
import { mailError } from '../core/errors.js';
import { principalOf, requirePermissions } from '../domain/acl.js';
import { runWorkflow } from '../domain/workflows/run.js';
import { getWorkflow, workflowByName, type WorkflowRecord } from '../domain/workflows/store.js';
import type { Db } from '../store/db.js';
import { renderParam, unbound, type ObjectTargetDeps } from './object-deps.js';

export const workflowParams = z
  .strictObject({
    workflow: z
      .union([z.number().int().positive(), z.string().min(1)])
      .optional()
      .describe("workflow name or id, or a template such as '<%route%>'; default: the route's `route` capture, else `objectId`"),
  })
  .describe('start a run (a process) of a workflow with the message as its input');

export type WorkflowParams = z.output<typeof workflowParams>;

async function resolveWorkflow(db: Db, p: WorkflowParams, captures: Record<string, string>, rcpt: string): Promise<WorkflowRecord> {
  const byId = p.workflow === undefined && !captures.route && captures.objectId;
  const raw = renderParam(p.workflow, captures, ['route', 'objectId']);
  let w: WorkflowRecord | undefined;
  if (raw !== undefined) {
    w = byId || typeof p.workflow === 'number' ? undefined : await workflowByName(db.kysely, raw);
    if (!w && /^\d{1,15}$/.test(raw)) w = await getWorkflow(db.kysely, Number(raw));
  }
  if (!w) throw mailError('UNKNOWN_RECIPIENT', `No such workflow here: <${rcpt}>`);
  return w;
}

/**
 * The `workflow` target: 550 5.1.1 at RCPT time for an unknown workflow, 550 5.7.1 when the
 * principal lacks read on it. After DATA each delivery is one process (domain/workflows/run.ts):
 * exit 0 completes it; exit 75 (EX_TEMPFAIL) or a timeout fails it transiently and the delivery
 * queue runs it again by the route's retry schedule; any other exit fails it for good.
 */
export function createWorkflowTarget(deps?: ObjectTargetDeps): Target<WorkflowParams> {
  return {
    kind: 'workflow',
    params: workflowParams,
    // Two recipients naming one workflow start one process; two workflows, two. An id is a
    // number however it is written (ogo+7@ and ogo+07@ are workflow 7, as resolveWorkflow reads
    // them): one process, not two.
    destination: (rcpt, p, captures) => {
      const byId = p.workflow === undefined && !captures.route && captures.objectId;
      const raw = renderParam(p.workflow, captures, ['route', 'objectId']);
      if (raw === undefined) return rcpt.toLowerCase();
      if (!(byId || typeof p.workflow === 'number')) return `name ${raw}`;
      return `id ${/^\d{1,15}$/.test(raw) ? Number(raw) : raw}`;
    },
    async check(rcpt, p, ctx) {
      if (!deps) throw unbound('workflow');
      const w = await resolveWorkflow(deps.db, p, ctx.captures, rcpt);
      await requirePermissions(deps.db.kysely, w.id, principalOf(ctx.authUser), 'r', `start workflow ${w.name}`);
    },
    async deliver(msg, p, ctx) {
      if (!deps) throw unbound('workflow');
      const w = await resolveWorkflow(deps.db, p, ctx.captures, ctx.recipients[0] ?? '');
      await requirePermissions(deps.db.kysely, w.id, principalOf(msg.message.authUser), 'r', `start workflow ${w.name}`);
      return runWorkflow(deps, w, msg, ctx);
    },
  };
}

/** The unbound `workflow` target of the registry (config validation reads its params). */
export const workflowTarget = createWorkflowTarget();
