import type { Kysely, Migration } from 'kysely';

/**
 * Discussion groups. A group and each of its posts are objects (one id sequence with folders
 * and workflows, ACLs on the same table); these tables hold what is particular to them. Flags
 * are integers 0/1: SQLite has no boolean and better-sqlite3 refuses JS booleans.
 * `messages.post_time` keeps the post time an ingress asked for (`postroom deliver -t message`:
 * the Date: header), so the group target needs nothing but the stored message.
 */
export const m0006Groups: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('messages').addColumn('post_time', 'varchar(32)').execute();

    await db.schema
      .createTable('groups')
      .addColumn('id', 'bigint', (c) => c.primaryKey().references('objects.id').onDelete('cascade'))
      // Lower-cased list address (LOCAL@DOMAIN); VERP bounces come back to LOCAL+bounces-…@DOMAIN.
      .addColumn('address', 'varchar(320)', (c) => c.notNull().unique())
      .addColumn('posting', 'varchar(16)', (c) => c.notNull())
      .addColumn('reply_to', 'varchar(16)', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('group_members')
      .addColumn('group_id', 'bigint', (c) => c.notNull().references('groups.id').onDelete('cascade'))
      .addColumn('email', 'varchar(320)', (c) => c.notNull())
      .addColumn('name', 'text')
      .addColumn('delivery', 'integer', (c) => c.notNull())
      .addColumn('bounces', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('suspended', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('last_bounce_at', 'varchar(32)')
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addPrimaryKeyConstraint('group_members_pk', ['group_id', 'email'])
      .execute();

    await db.schema
      .createTable('group_posts')
      .addColumn('id', 'bigint', (c) => c.primaryKey().references('objects.id').onDelete('cascade'))
      .addColumn('group_id', 'bigint', (c) => c.notNull().references('groups.id').onDelete('cascade'))
      .addColumn('message', 'varchar(40)', (c) => c.notNull())
      // One post per delivery: a retried delivery finds its post instead of making a second.
      .addColumn('delivery', 'varchar(80)', (c) => c.notNull().unique())
      .addColumn('message_id', 'text')
      .addColumn('subject', 'text')
      .addColumn('thread_subject', 'text')
      .addColumn('author', 'text')
      .addColumn('thread', 'bigint', (c) => c.notNull())
      .addColumn('parent', 'bigint')
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('posted_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('group_posts_message_id').on('group_posts').columns(['group_id', 'message_id']).execute();
    await db.schema.createIndex('group_posts_subject').on('group_posts').columns(['group_id', 'thread_subject', 'id']).execute();

    // What the relay did per member, so a retried delivery sends only to those still owed a copy.
    await db.schema
      .createTable('group_relays')
      .addColumn('post', 'bigint', (c) => c.notNull().references('group_posts.id').onDelete('cascade'))
      .addColumn('email', 'varchar(320)', (c) => c.notNull())
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('response', 'text')
      .addColumn('at', 'varchar(32)', (c) => c.notNull())
      .addPrimaryKeyConstraint('group_relays_pk', ['post', 'email'])
      .execute();
  },
  async down(db: Kysely<any>) {
    for (const t of ['group_relays', 'group_posts', 'group_members', 'groups']) await db.schema.dropTable(t).execute();
    await db.schema.alterTable('messages').dropColumn('post_time').execute();
  },
};
