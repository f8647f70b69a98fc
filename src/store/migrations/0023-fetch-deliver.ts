import type { Kysely, Migration } from 'kysely';

/**
 * `postroom fetch … project=… tracker=…` (the Redmine/OpenProject rake options) names no
 * configured route: the targets it asks for are kept with the link of each message it kept
 * (JSON, the `deliver` list of a route), and planning gives the message to them.
 */
export const m0023FetchDeliver: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('mail_links').addColumn('deliver', 'text').execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.alterTable('mail_links').dropColumn('deliver').execute();
  },
};
