import type { Kysely, Migration } from 'kysely';

/**
 * One message reaching us through two relays is kept twice (its trace fields differ, so its
 * bytes and dedup_key do) but delivered once. content_sha256 fingerprints it without trace
 * fields (mime/content-fingerprint.ts); delivery_claims holds one row per (Message-ID,
 * fingerprint, recipient, route) delivered within the window, taken in the transaction that
 * plans the deliveries, so two copies planned at once cannot both win. duplicate_of names the
 * earlier copy. Messages kept before this have no fingerprint and are never deduplicated.
 */
export const m0013RelayDuplicates: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('messages').addColumn('content_sha256', 'varchar(64)').execute();
    await db.schema.alterTable('messages').addColumn('duplicate_of', 'text').execute();
    await db.schema
      .createTable('delivery_claims')
      .addColumn('key', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('message', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('delivery_claims_created_at').on('delivery_claims').column('created_at').execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropTable('delivery_claims').execute();
    await db.schema.alterTable('messages').dropColumn('duplicate_of').execute();
    await db.schema.alterTable('messages').dropColumn('content_sha256').execute();
  },
};
