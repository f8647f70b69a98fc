import type { Kysely, Migration } from 'kysely';

/**
 * Indexes on every column that names a blob, so the sweep of orphan blobs (store/sweep.ts)
 * asks "does any row point at these hashes?" by index, a batch at a time, instead of scanning
 * whole tables on the connection that serves intake.
 */
const REFS = [
  ['messages_raw_sha256', 'messages', 'raw_sha256'],
  ['parts_sha256', 'parts', 'sha256'],
  ['documents_sha256', 'documents', 'sha256'],
  ['processes_input_sha256', 'processes', 'input_sha256'],
  ['tracker_attachments_sha256', 'tracker_attachments', 'sha256'],
] as const;

export const m0012BlobRefs: Migration = {
  async up(db: Kysely<any>) {
    for (const [name, table, column] of REFS) await db.schema.createIndex(name).on(table).column(column).execute();
  },
  async down(db: Kysely<any>) {
    for (const [name] of REFS) await db.schema.dropIndex(name).execute();
  },
};
