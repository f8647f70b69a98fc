import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import type { DocumentRecord } from '../../domain/folders/documents.js';
import { objectAddress, type ObjectsConfig } from '../../domain/objects/config.js';
import { clark, type Property } from '../../domain/objects/properties.js';
import type { ObjectRecord } from '../../domain/objects/store.js';
import type { ProcessRecord, WorkflowRecord } from '../../domain/workflows/store.js';

/** Shapes the object routes (objects, folders, documents, workflows, processes, acl) share. */

/** A numeric object id in a path or query. */
export const ObjectId = z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER).describe('numeric object id');
export const ObjectParams = z.strictObject({ id: ObjectId });

/** Names of folders and documents: one path segment, no control characters. */
export const ObjectName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[^/\\\u0000-\u001f\u007f]+$/, 'one name: no / \\ or control characters')
  .refine((s) => s !== '.' && s !== '..', 'not . or ..');

export const PropertyView = z.object({
  name: z.string().describe('Clark notation: {namespace}name'),
  namespace: z.string(),
  localName: z.string(),
  value: z.string(),
});

export const ObjectView = z.object({
  id: z.number().int(),
  kind: z.string(),
  name: z.string(),
  parent: z.number().int().nullable(),
  properties: z.record(z.string(), z.unknown()).describe("the object's own settings (a folder's collectMIMEType, keepUnmatched)"),
  address: z.string().nullable().describe('where mail to this object goes (objects.prefix + objects.domain), or null'),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const DocumentView = z.object({
  id: z.number().int(),
  folder: z.number().int(),
  name: z.string(),
  size: z.number().int(),
  sha256: z.string(),
  contentType: z.string(),
  message: z.string().nullable().describe('the kept message it was filed from'),
  properties: z.array(PropertyView),
  url: z.string().describe('where to download the bytes'),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const WorkflowView = z.object({
  id: z.number().int(),
  name: z.string(),
  address: z.string().nullable(),
  input: z.object({ type: z.string() }),
  action: z.record(z.string(), z.unknown()),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const ProcessView = z.object({
  id: z.number().int(),
  workflow: z.number().int(),
  message: z.string().nullable(),
  delivery: z.string().nullable(),
  state: z.enum(['queued', 'running', 'completed', 'failed']),
  disposition: z.enum(['transient', 'permanent']).nullable().describe('for failed: transient ones are retried by the delivery queue'),
  input: z.object({ type: z.string().nullable(), size: z.number().int().nullable(), sha256: z.string().nullable() }),
  output: z.number().int().nullable().describe('document id of stdout / the response body'),
  exitCode: z.number().int().nullable(),
  status: z.string().nullable(),
  error: z.string().nullable(),
  attempts: z.number().int(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});

/** A property as the API shows it. */
export function propertyOf(p: Property): z.output<typeof PropertyView> {
  return { name: clark(p), namespace: p.namespace, localName: p.name, value: p.value };
}

/** An object as the API shows it. */
export function objectOf(o: ObjectRecord, cfg: ObjectsConfig | undefined): z.output<typeof ObjectView> {
  const address = cfg ? (o.kind === 'workflow' ? objectAddress(cfg, { workflow: o.name }) : objectAddress(cfg, { id: o.id })) : undefined;
  return { id: o.id, kind: o.kind, name: o.name, parent: o.parent, properties: o.properties, address: address ?? null, createdAt: o.createdAt, updatedAt: o.updatedAt };
}

/** A document as the API shows it. */
export function documentOf(d: DocumentRecord): z.output<typeof DocumentView> {
  return {
    id: d.id,
    folder: d.folder,
    name: d.name,
    size: d.size,
    sha256: d.sha256,
    contentType: d.contentType,
    message: d.message,
    properties: d.properties.map(propertyOf),
    url: `/api/v1/documents/${d.id}/content`,
    createdAt: d.createdAt,
    updatedAt: d.updatedAt,
  };
}

/** A workflow as the API shows it; an HTTP action's token is not shown back. */
export function workflowOf(w: WorkflowRecord, cfg: ObjectsConfig | undefined): z.output<typeof WorkflowView> {
  const { token, ...action } = w.action as Record<string, unknown>;
  return {
    id: w.id,
    name: w.name,
    address: (cfg && objectAddress(cfg, { workflow: w.name })) ?? null,
    input: w.input,
    action: token ? { ...action, token: '(set)' } : action,
    createdAt: w.createdAt,
    updatedAt: w.updatedAt,
  };
}

/** A process as the API shows it. */
export function processOf(p: ProcessRecord): z.output<typeof ProcessView> {
  return {
    id: p.id,
    workflow: p.workflow,
    message: p.message,
    delivery: p.delivery,
    state: p.state,
    disposition: p.disposition,
    input: { type: p.inputType, size: p.inputSize, sha256: p.inputSha256 },
    output: p.output,
    exitCode: p.exitCode,
    status: p.status,
    error: p.error,
    attempts: p.attempts,
    createdAt: p.createdAt,
    startedAt: p.startedAt,
    finishedAt: p.finishedAt,
  };
}

/** A page of ids: `after` for the next page, or null on the last one. */
export function nextAfter<T extends { id: number }>(rows: T[], limit: number): { items: T[]; next: number | null } {
  const items = rows.slice(0, limit);
  return { items, next: rows.length > limit ? items[items.length - 1].id : null };
}

/** Throw INVALID_REQUEST with `detail` when `ok` is false. */
export function requireThat(ok: boolean, detail: string): void {
  if (!ok) throw mailError('INVALID_REQUEST', detail);
}
