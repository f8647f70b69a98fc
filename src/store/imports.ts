import type { Kysely, Transaction } from 'kysely';
import type { Database } from './schema.js';

type Q = Kysely<Database> | Transaction<Database>;

/** Record the flags a message had where it was imported from (replacing any recorded before). */
export async function setMessageFlags(db: Q, message: string, flags: readonly string[]): Promise<void> {
  const value = JSON.stringify([...flags]);
  await db
    .insertInto('message_flags')
    .values({ message, flags: value })
    .onConflict((oc) => oc.column('message').doUpdateSet({ flags: value }))
    .execute();
}

/** The flags recorded for a message ([] when none). */
export async function getMessageFlags(db: Q, message: string): Promise<string[]> {
  const r = await db.selectFrom('message_flags').select('flags').where('message', '=', message).executeTakeFirst();
  return r ? (JSON.parse(r.flags) as string[]) : [];
}

/** Where an import of `source` may go on from. */
export interface ImportProgress {
  position: number;
  tailSha256: string;
  messages: number;
}

export async function readImportProgress(db: Q, source: string): Promise<ImportProgress | undefined> {
  const r = await db.selectFrom('import_progress').selectAll().where('source', '=', source).executeTakeFirst();
  return r ? { position: Number(r.position), tailSha256: r.tail_sha256, messages: Number(r.messages) } : undefined;
}

export async function saveImportProgress(db: Q, source: string, p: ImportProgress): Promise<void> {
  const row = { position: p.position, tail_sha256: p.tailSha256, messages: p.messages, updated_at: new Date().toISOString() };
  await db
    .insertInto('import_progress')
    .values({ source, ...row })
    .onConflict((oc) => oc.column('source').doUpdateSet(row))
    .execute();
}

/** Forget an import's place (it finished: a later run of the same file reads it all again, and keeps nothing twice). */
export async function clearImportProgress(db: Q, source: string): Promise<void> {
  await db.deleteFrom('import_progress').where('source', '=', source).execute();
}
