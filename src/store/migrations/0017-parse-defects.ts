import type { Kysely, Migration } from 'kysely';

/**
 * What was wrong with a message that still parsed (src/core/mime-defects.ts names), as a JSON array;
 * null until parsed, and for rows parsed before defects were recorded. A malformed message no
 * longer reads as cleanly parsed.
 */
export const m0017ParseDefects: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('messages').addColumn('defects', 'text').execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.alterTable('messages').dropColumn('defects').execute();
  },
};
