import { Readable } from 'node:stream';
import type { DeliveryContext, ParsedMessage, Receipt } from '../../core/delivery.js';
import { asMailError } from '../../core/errors.js';
import type { BlobStore } from '../../store/ports.js';
import type { Db } from '../../store/db.js';
import { fileDocuments } from '../folders/documents.js';
import { isCommand } from './definition.js';
import { workflowInput, workflowMeta } from './input.js';
import { runCommand } from './run-command.js';
import { runHttp } from './run-http.js';
import { processForDelivery, updateProcess, type WorkflowRecord } from './store.js';

/**
 * One attempt at a workflow run for a delivery. The process record is the delivery's: a retry
 * (after exit 75, a timeout, a crash) runs the same process again; a process already completed
 * is not run twice. The output (stdout or the response body) is kept as a document under the
 * process. Failures are recorded on the process and thrown on as MailError, so the delivery
 * queue retries transient ones by the route's schedule.
 */
export async function runWorkflow(
  deps: { db: Db; blobs: BlobStore },
  workflow: WorkflowRecord,
  msg: ParsedMessage,
  ctx: DeliveryContext,
): Promise<Receipt> {
  const { db, blobs } = deps;
  const proc = await processForDelivery(db, workflow, { message: msg.message.id, delivery: ctx.deliveryId });
  if (proc.state === 'completed') {
    return { summary: `process ${proc.id} already completed (${proc.status})`, process: proc.id };
  }
  const now = () => new Date().toISOString();
  await updateProcess(db.kysely, proc.id, {
    state: 'running',
    disposition: null,
    error: null,
    attempts: proc.attempts + 1,
    started_at: now(),
    finished_at: null,
  });
  try {
    const input = workflowInput(msg, workflow.input.type);
    await updateProcess(db.kysely, proc.id, { input_type: input.contentType, input_sha256: input.sha256 || null, input_size: input.size });
    const meta = workflowMeta(msg, {
      POSTROOM_WORKFLOW: workflow.name,
      POSTROOM_PROCESS_ID: String(proc.id),
      POSTROOM_DELIVERY_ID: ctx.deliveryId,
      POSTROOM_INPUT_TYPE: input.contentType,
    });
    const action = workflow.action;
    let output: Buffer;
    let outputType: string;
    let status: string;
    let exitCode: number | null = null;
    let truncated: boolean;
    if (isCommand(action)) {
      const r = await runCommand(action, await input.open(), meta, ctx.signal);
      ({ output, truncated } = r);
      exitCode = r.exitCode;
      outputType = 'text/plain';
      status = `exit ${r.exitCode}`;
    } else {
      const r = await runHttp(action, await input.open(), input.contentType, meta, ctx.signal);
      ({ output, truncated } = r);
      outputType = r.contentType ?? 'application/octet-stream';
      status = `HTTP ${r.status}`;
    }
    const staged = await blobs.stage(Readable.from([output]));
    await blobs.commit([staged], db.kysely);
    const [doc] = await fileDocuments(db, proc.id, [
      { name: isCommand(action) ? 'stdout' : 'response', sha256: staged.sha256, size: staged.size, contentType: outputType },
    ]);
    await updateProcess(db.kysely, proc.id, {
      state: 'completed',
      output: doc.id,
      exit_code: exitCode,
      status: truncated ? `${status} (output cut at ${output.length} bytes)` : status,
      finished_at: now(),
    });
    return { summary: `process ${proc.id} completed: ${status}`, process: proc.id, output: doc.id };
  } catch (err) {
    const e = asMailError(err);
    const code = (err as { exitCode?: unknown }).exitCode;
    await updateProcess(db.kysely, proc.id, {
      state: 'failed',
      disposition: e.disposition,
      exit_code: typeof code === 'number' ? code : null,
      status: e.status,
      error: e.message.slice(0, 1000),
      finished_at: now(),
    });
    throw e;
  }
}
