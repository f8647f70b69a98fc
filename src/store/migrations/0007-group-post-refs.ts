import type { Kysely, Migration } from 'kysely';

/**
 * The Message-IDs each group post names (In-Reply-To first, then References nearest first),
 * by rank. Posts arrive in any order, several at once: when a parent arrives after its reply,
 * it looks here for the replies that name it and adopts them (see domain/groups/posts.ts).
 * Posts kept before this migration have no rows, so they are never adopted.
 */
export const m0007GroupPostRefs: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('group_post_refs')
      .addColumn('post', 'bigint', (c) => c.notNull().references('group_posts.id').onDelete('cascade'))
      .addColumn('rank', 'integer', (c) => c.notNull())
      .addColumn('group_id', 'bigint', (c) => c.notNull())
      .addColumn('message_id', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('group_post_refs_pk', ['post', 'rank'])
      .execute();
    await db.schema.createIndex('group_post_refs_message_id').on('group_post_refs').columns(['group_id', 'message_id']).execute();
    // Adopting a reply moves the replies below it too: found by parent.
    await db.schema.createIndex('group_posts_parent').on('group_posts').column('parent').execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropIndex('group_posts_parent').execute();
    await db.schema.dropTable('group_post_refs').execute();
  },
};
