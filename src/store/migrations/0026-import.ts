import type { Kysely, Migration } from 'kysely';

/**
 * `postroom import`:
 * - message_flags: the flags a message had where it came from (a Maildir file name's ":2,FRS",
 *   as IMAP system flags: \Seen, \Answered, \Flagged, \Draft, \Deleted, $Forwarded), so that
 *   an archive moved in keeps what its reader had marked.
 * - import_progress: how far an import of one file got (the offset of the first message not
 *   yet kept), so a rerun after Ctrl-C or kill -9 starts there instead of at byte 0. The
 *   messages before it are kept; the dedup key keeps nothing twice from the ones after it.
 */
export const m0026Import: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('message_flags')
      .addColumn('message', 'varchar(40)', (c) => c.primaryKey().references('messages.id').onDelete('cascade'))
      .addColumn('flags', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('import_progress')
      .addColumn('source', 'varchar(600)', (c) => c.primaryKey())
      .addColumn('position', 'bigint', (c) => c.notNull())
      .addColumn('tail_sha256', 'varchar(64)', (c) => c.notNull())
      .addColumn('messages', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropTable('import_progress').execute();
    await db.schema.dropTable('message_flags').execute();
  },
};
