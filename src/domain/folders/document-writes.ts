import type { Db } from '../../store/db.js';
import type { BlobStore, StagedBlob } from '../../store/ports.js';
import { getProperties, setProperties } from '../objects/properties.js';
import { deleteObject, isUniqueViolation } from '../objects/store.js';
import { documentByName, requireDocument, type DocumentRecord } from './documents.js';
import { mailError } from '../../core/errors.js';

/**
 * Documents written by name, as a WebDAV client writes files (RFC 4918 PUT, COPY, MOVE,
 * DELETE): the name is the one given, not a fresh one (mail filing's fileDocuments picks
 * free names instead). Bytes are content-addressed blobs, so a copy copies no bytes.
 */

/** Bytes a client sent, staged and made durable under their hash before the row points at them. */
export async function keepBytes(db: Db, blobs: BlobStore, staged: StagedBlob): Promise<void> {
  const rest = await blobs.settle([staged]);
  if (rest.length) await db.kysely.transaction().execute((trx) => blobs.commit(rest, trx));
}

/**
 * Put bytes (already kept) into `folder` under `name`: a new document, or the same document with
 * new bytes when one has that name (its properties stay). Resolves with it and whether it is new.
 */
export async function putDocument(
  db: Db,
  folder: number,
  name: string,
  bytes: { sha256: string; size: number; contentType: string },
): Promise<{ doc: DocumentRecord; created: boolean }> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await db.kysely.transaction().execute(async (trx) => {
        const now = new Date().toISOString();
        const existing = await documentByName(trx, folder, name);
        if (existing) {
          await trx.updateTable('documents').set({ sha256: bytes.sha256, size: bytes.size, content_type: bytes.contentType }).where('id', '=', existing.id).execute();
          await trx.updateTable('objects').set({ updated_at: now }).where('id', '=', existing.id).execute();
          return { doc: await requireDocument(trx, existing.id), created: false };
        }
        const taken = await trx.selectFrom('objects').select('kind').where('parent', '=', folder).where('name', '=', name).executeTakeFirst();
        if (taken) throw mailError('INVALID_REQUEST', `'${name}' is a ${taken.kind} in folder ${folder}`);
        const { id } = await trx
          .insertInto('objects')
          .values({ kind: 'document', name, parent: folder, properties: '{}', created_at: now, updated_at: now })
          .returning('id')
          .executeTakeFirstOrThrow();
        await trx.insertInto('documents').values({ id: Number(id), sha256: bytes.sha256, size: bytes.size, content_type: bytes.contentType, message: null, delivery: null }).execute();
        return { doc: await requireDocument(trx, Number(id)), created: true };
      });
    } catch (err) {
      // Two clients PUT the same new name at once: the second replaces the first's bytes.
      if (isUniqueViolation(err) && attempt < 3) continue;
      throw err;
    }
  }
}

/**
 * Copy or move a document to `folder` under `name`. With `overwrite`, a document already there
 * is replaced (deleted first, RFC 4918 §9.8.4); without, it is PRECONDITION_FAILED. Resolves
 * with the document at its new place and whether something was replaced.
 */
export async function copyOrMoveDocument(
  db: Db,
  source: DocumentRecord,
  to: { folder: number; name: string; overwrite: boolean; move: boolean },
): Promise<{ doc: DocumentRecord; replaced: boolean }> {
  return db.kysely.transaction().execute(async (trx) => {
    if (to.folder === source.folder && to.name === source.name) throw mailError('FORBIDDEN', 'source and destination are the same resource');
    const there = await trx.selectFrom('objects').select(['id', 'kind']).where('parent', '=', to.folder).where('name', '=', to.name).executeTakeFirst();
    if (there && (!to.overwrite || there.kind !== 'document')) {
      throw mailError('PRECONDITION_FAILED', `'${to.name}' exists in folder ${to.folder}${there.kind === 'document' ? ' (Overwrite: F)' : ` and is a ${there.kind}`}`);
    }
    if (there) await deleteObject(trx, Number(there.id));
    const now = new Date().toISOString();
    if (to.move) {
      await trx.updateTable('objects').set({ parent: to.folder, name: to.name, updated_at: now }).where('id', '=', source.id).execute();
      return { doc: await requireDocument(trx, source.id), replaced: !!there };
    }
    const { id } = await trx
      .insertInto('objects')
      .values({ kind: 'document', name: to.name, parent: to.folder, properties: '{}', created_at: now, updated_at: now })
      .returning('id')
      .executeTakeFirstOrThrow();
    await trx.insertInto('documents').values({ id: Number(id), sha256: source.sha256, size: source.size, content_type: source.contentType, message: source.message, delivery: null }).execute();
    await setProperties(trx, Number(id), (await getProperties(trx, [source.id])).get(source.id) ?? []);
    return { doc: await requireDocument(trx, Number(id)), replaced: !!there };
  });
}
