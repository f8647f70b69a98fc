import { z } from 'zod';
import type { Target } from '../core/delivery.js';
import { mailError } from '../core/errors.js';
import { principalOf, requirePermissions } from '../domain/acl.js';
import { collect } from '../domain/folders/collect.js';
import { fileDocuments } from '../domain/folders/documents.js';
import { readFolderSettings } from '../domain/folders/settings.js';
import { getObject, type ObjectRecord } from '../domain/objects/store.js';
import type { Db } from '../store/db.js';
import { renderParam, unbound, type ObjectTargetDeps } from './object-deps.js';

export const folderParams = z
  .strictObject({
    folder: z
      .union([z.number().int().positive(), z.string().min(1)])
      .optional()
      .describe("folder id, or a template such as '<%objectId%>'; default: the route's objectId capture"),
  })
  .describe('file the message (or its text body, or matching attachments) as documents in a folder');

export type FolderParams = z.output<typeof folderParams>;

/** The folder a recipient names: 550 5.1.1 when there is none (not a number, gone, another kind). */
async function resolveFolder(db: Db, p: FolderParams, captures: Record<string, string>, rcpt: string): Promise<ObjectRecord> {
  const raw = renderParam(p.folder, captures, ['objectId']);
  const id = raw !== undefined && /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
  const o = Number.isSafeInteger(id) ? await getObject(db.kysely, id) : undefined;
  if (!o) throw mailError('UNKNOWN_RECIPIENT', `No such object here: <${rcpt}>`);
  if (o.kind !== 'folder') throw mailError('UNKNOWN_RECIPIENT', `Object ${o.id} is a ${o.kind}, not a folder: <${rcpt}>`);
  return o;
}

/**
 * The `folder` target. At RCPT time it answers 550 5.1.1 for an unknown folder and 550 5.7.1
 * when the principal (the SMTP AUTH user, else `network`) lacks read and write, so nothing is
 * kept for a recipient that could never be filed. A message without Message-ID is refused
 * while DATA streams (550 5.6.0: `requiresMessageId`, which every ingress honours). After
 * DATA it files what the folder collects (see domain/folders/settings.ts); a message without
 * anything the folder collects fails permanently with 5.6.0 (decided from the parsed
 * message, after the 250 reply; recorded on the delivery).
 */
export function createFolderTarget(deps?: ObjectTargetDeps): Target<FolderParams> {
  return {
    kind: 'folder',
    params: folderParams,
    requiresMessageId: true,
    // One folder under two addresses (ogo+1@, docs+1@) is one document; two folders are two.
    destination: (rcpt, p, captures) => {
      const raw = renderParam(p.folder, captures, ['objectId']);
      return raw !== undefined && /^\d{1,15}$/.test(raw) ? `folder ${Number(raw)}` : rcpt.toLowerCase();
    },
    async check(rcpt, p, ctx) {
      if (!deps) throw unbound('folder');
      const folder = await resolveFolder(deps.db, p, ctx.captures, rcpt);
      await requirePermissions(deps.db.kysely, folder.id, principalOf(ctx.authUser), 'rw', `deliver into folder ${folder.id}`);
    },
    async deliver(msg, p, ctx) {
      if (!deps) throw unbound('folder');
      const rcpt = ctx.recipients[0] ?? '';
      const folder = await resolveFolder(deps.db, p, ctx.captures, rcpt);
      // Checked again: the grant may have been withdrawn between RCPT and now.
      await requirePermissions(deps.db.kysely, folder.id, principalOf(msg.message.authUser), 'rw', `deliver into folder ${folder.id}`);
      const drafts = collect(msg, readFolderSettings(folder.properties), deps.headers);
      const docs = await fileDocuments(deps.db, folder.id, drafts, { message: msg.message.id, delivery: ctx.deliveryId });
      return {
        summary: `filed ${docs.length} document${docs.length === 1 ? '' : 's'} in folder ${folder.id}: ${docs.map((d) => d.name).join(', ')}`.slice(0, 300),
        folder: folder.id,
        documents: docs.map((d) => d.id),
      };
    },
  };
}

/** The unbound `folder` target of the registry (config validation reads its params). */
export const folderTarget = createFolderTarget();
