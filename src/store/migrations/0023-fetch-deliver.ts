import type { Kysely, Migration } from 'kysely';

/**
 * Two things the systems Postroom replaces had and it lacked:
 * - `postroom fetch … project=… tracker=…` (the Redmine/OpenProject rake options) names no
 *   configured route: the targets it asks for are kept with the link of each message it kept
 *   (JSON, the `deliver` list of a route), and planning gives the message to them.
 * - The email processor service let operators extend its model: properties of their own on
 *   profiles, accounts, folders and messages (JSON objects, validated against `mail.model`).
 */
export const m0023FetchDeliver: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('mail_links').addColumn('deliver', 'text').execute();
    for (const t of ['mail_profiles', 'mail_accounts', 'mail_folders']) await db.schema.alterTable(t).addColumn('properties', 'text').execute();
    await db.schema
      .createTable('message_properties')
      .addColumn('message', 'varchar(40)', (c) => c.primaryKey().references('messages.id').onDelete('cascade'))
      .addColumn('properties', 'text', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropTable('message_properties').execute();
    for (const t of ['mail_profiles', 'mail_accounts', 'mail_folders']) await db.schema.alterTable(t).dropColumn('properties').execute();
    await db.schema.alterTable('mail_links').dropColumn('deliver').execute();
  },
};
