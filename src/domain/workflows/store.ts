import { mailError } from '../../core/errors.js';
import type { Db } from '../../store/db.js';
import type { ProcessesTable } from '../../store/schema.js';
import { isUniqueViolation, type Q } from '../objects/store.js';
import type { CommandAction, HttpAction, WorkflowDefinition } from './definition.js';

/** A workflow as stored. */
export interface WorkflowRecord {
  id: number;
  name: string;
  input: { type: string };
  action: CommandAction | HttpAction;
  createdAt: string;
  updatedAt: string;
}

export type ProcessState = 'queued' | 'running' | 'completed' | 'failed';

/** One run of a workflow. */
export interface ProcessRecord {
  id: number;
  workflow: number;
  message: string | null;
  delivery: string | null;
  state: ProcessState;
  disposition: 'transient' | 'permanent' | null;
  inputType: string | null;
  inputSha256: string | null;
  inputSize: number | null;
  /** Document id of stdout / the response body. */
  output: number | null;
  exitCode: number | null;
  status: string | null;
  error: string | null;
  attempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

function workflowQuery(db: Q) {
  return db
    .selectFrom('workflows')
    .innerJoin('objects', 'objects.id', 'workflows.id')
    .select(['workflows.id as id', 'workflows.name as name', 'workflows.input as input', 'workflows.action as action', 'objects.created_at as created_at', 'objects.updated_at as updated_at']);
}

type WorkflowRow = Awaited<ReturnType<ReturnType<typeof workflowQuery>['execute']>>[number];

function toWorkflow(r: WorkflowRow): WorkflowRecord {
  return {
    id: Number(r.id),
    name: r.name,
    input: JSON.parse(r.input) as { type: string },
    action: JSON.parse(r.action) as CommandAction | HttpAction,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Create a workflow (an object of kind workflow); INVALID_REQUEST when the name is taken. */
export async function createWorkflow(db: Db, def: WorkflowDefinition): Promise<WorkflowRecord> {
  try {
    const id = await db.kysely.transaction().execute(async (trx) => {
      const now = new Date().toISOString();
      const { id } = await trx
        .insertInto('objects')
        .values({ kind: 'workflow', name: def.name, parent: null, properties: '{}', created_at: now, updated_at: now })
        .returning('id')
        .executeTakeFirstOrThrow();
      await trx
        .insertInto('workflows')
        .values({ id: Number(id), name: def.name, input: JSON.stringify(def.input), action: JSON.stringify(def.action) })
        .execute();
      return Number(id);
    });
    return (await getWorkflow(db.kysely, id))!;
  } catch (err) {
    if (isUniqueViolation(err)) throw mailError('INVALID_REQUEST', `a workflow named '${def.name}' exists`);
    throw err;
  }
}

/** Replace a workflow's input and action (the name stays: it is an address). */
export async function updateWorkflow(db: Db, id: number, def: Pick<WorkflowDefinition, 'input' | 'action'>): Promise<WorkflowRecord> {
  await db.kysely.transaction().execute(async (trx) => {
    await trx.updateTable('workflows').set({ input: JSON.stringify(def.input), action: JSON.stringify(def.action) }).where('id', '=', id).execute();
    await trx.updateTable('objects').set({ updated_at: new Date().toISOString() }).where('id', '=', id).execute();
  });
  const w = await getWorkflow(db.kysely, id);
  if (!w) throw mailError('NOT_FOUND', `No workflow ${id}`);
  return w;
}

/** A workflow by id, or undefined. */
export async function getWorkflow(db: Q, id: number): Promise<WorkflowRecord | undefined> {
  if (!Number.isSafeInteger(id)) return undefined;
  const r = await workflowQuery(db).where('workflows.id', '=', id).executeTakeFirst();
  return r ? toWorkflow(r) : undefined;
}

/** A workflow by name (case-insensitive, as the local part of an address may arrive), or undefined. */
export async function workflowByName(db: Q, name: string): Promise<WorkflowRecord | undefined> {
  const exact = await workflowQuery(db).where('workflows.name', '=', name).executeTakeFirst();
  if (exact) return toWorkflow(exact);
  const rows = await workflowQuery(db).execute();
  const r = rows.find((w) => w.name.toLowerCase() === name.toLowerCase());
  return r ? toWorkflow(r) : undefined;
}

/** Every workflow, by name. */
export async function listWorkflows(db: Q): Promise<WorkflowRecord[]> {
  return (await workflowQuery(db).orderBy('workflows.name').execute()).map(toWorkflow);
}

function processQuery(db: Q) {
  return db.selectFrom('processes').innerJoin('objects', 'objects.id', 'processes.id').selectAll('processes').select('objects.created_at as created_at');
}

function toProcess(r: ProcessesTable & { created_at: string }): ProcessRecord {
  return {
    id: Number(r.id),
    workflow: Number(r.workflow),
    message: r.message,
    delivery: r.delivery,
    state: r.state as ProcessState,
    disposition: r.disposition as ProcessRecord['disposition'],
    inputType: r.input_type,
    inputSha256: r.input_sha256,
    inputSize: r.input_size === null ? null : Number(r.input_size),
    output: r.output === null ? null : Number(r.output),
    exitCode: r.exit_code,
    status: r.status,
    error: r.error,
    attempts: r.attempts,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

/**
 * The process of a delivery: found if the delivery ran before (a retry), else created queued.
 * One delivery is one process, however often it is attempted.
 */
export async function processForDelivery(db: Db, workflow: WorkflowRecord, source: { message: string; delivery: string }): Promise<ProcessRecord> {
  const find = async () =>
    processQuery(db.kysely).where('processes.workflow', '=', workflow.id).where('processes.delivery', '=', source.delivery).executeTakeFirst();
  const prior = await find();
  if (prior) return toProcess(prior);
  try {
    const id = await db.kysely.transaction().execute(async (trx) => {
      const now = new Date().toISOString();
      const { id } = await trx
        .insertInto('objects')
        .values({ kind: 'process', name: `${workflow.name}-${source.delivery}`, parent: workflow.id, properties: '{}', created_at: now, updated_at: now })
        .returning('id')
        .executeTakeFirstOrThrow();
      await trx
        .insertInto('processes')
        .values({ id: Number(id), workflow: workflow.id, message: source.message, delivery: source.delivery, state: 'queued', attempts: 0 } as ProcessesTable)
        .execute();
      return Number(id);
    });
    return (await getProcess(db.kysely, id))!;
  } catch (err) {
    const again = isUniqueViolation(err) ? await find() : undefined;
    if (again) return toProcess(again);
    throw err;
  }
}

/** Record a process's progress. */
export async function updateProcess(
  db: Q,
  id: number,
  patch: Partial<Omit<ProcessesTable, 'id' | 'workflow' | 'message' | 'delivery'>>,
): Promise<void> {
  await db.updateTable('processes').set(patch).where('id', '=', id).execute();
  await db.updateTable('objects').set({ updated_at: new Date().toISOString() }).where('id', '=', id).execute();
}

/** A process by id, or undefined. */
export async function getProcess(db: Q, id: number): Promise<ProcessRecord | undefined> {
  if (!Number.isSafeInteger(id)) return undefined;
  const r = await processQuery(db).where('processes.id', '=', id).executeTakeFirst();
  return r ? toProcess(r) : undefined;
}

/** Processes newest first, filtered by workflow and state; `before` pages. */
export async function listProcesses(
  db: Q,
  f: { workflow?: number; state?: ProcessState; message?: string; before?: number; limit: number },
): Promise<ProcessRecord[]> {
  let q = processQuery(db).orderBy('processes.id', 'desc').limit(f.limit);
  if (f.workflow !== undefined) q = q.where('processes.workflow', '=', f.workflow);
  if (f.state) q = q.where('processes.state', '=', f.state);
  if (f.message) q = q.where('processes.message', '=', f.message);
  if (f.before !== undefined) q = q.where('processes.id', '<', f.before);
  return (await q.execute()).map(toProcess);
}
