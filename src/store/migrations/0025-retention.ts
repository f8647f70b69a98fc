import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Retention (store/retention.ts) removes old messages; two things must outlive them:
 * - `messages.pinned_at`: a message an operator pinned (API or `postroom messages pin`) is never
 *   removed by retention, whatever its age.
 * - `group_posts.raw_sha256`: a post's own reference to the bytes it was made of. Posts read
 *   their content through the message until now; with this column the post names the blob
 *   itself, the orphan sweep counts it as a reference (store/sweep.ts REFS), and removing the
 *   message leaves the post whole. Existing posts take their message's hash.
 */
export const m0025Retention: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('messages').addColumn('pinned_at', 'varchar(32)').execute();
    await db.schema.alterTable('group_posts').addColumn('raw_sha256', 'varchar(64)').execute();
    await sql`update group_posts set raw_sha256 = (select m.raw_sha256 from messages m where m.id = group_posts.message)`.execute(db);
    // The sweep asks "does any row name these hashes?" by index (as migration 0012 for the others).
    await db.schema.createIndex('group_posts_raw_sha256').on('group_posts').column('raw_sha256').execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropIndex('group_posts_raw_sha256').execute();
    await db.schema.alterTable('group_posts').dropColumn('raw_sha256').execute();
    await db.schema.alterTable('messages').dropColumn('pinned_at').execute();
  },
};
