import type { Kysely, Migration } from 'kysely';

/**
 * A route's recipients fan out into one delivery per destination (routing/plan.ts): the
 * destination a target names (a folder id, a group address, a recipient) is part of the
 * delivery id and kept beside it, and a delivery taking several recipients at once keeps each
 * one's captures. Rows planned before keep '' (their ids were derived without one) and null.
 */
export const m0009DeliveryDestinations: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('deliveries').addColumn('destination', 'text', (c) => c.notNull().defaultTo('')).execute();
    await db.schema.alterTable('deliveries').addColumn('recipient_captures', 'text').execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.alterTable('deliveries').dropColumn('recipient_captures').execute();
    await db.schema.alterTable('deliveries').dropColumn('destination').execute();
  },
};
