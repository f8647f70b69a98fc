import type { Kysely, Migration } from 'kysely';

/**
 * One index for due deliveries. `deliveries_due` (status, next_attempt_at) is a prefix of
 * `deliveries_due_target` (status, next_attempt_at, route, target_index, lease_until), and being
 * smaller, SQLite's planner chose it for the lease query: every due row of a held-back (full or
 * paused) destination was then read from the table to see its route and lease, 5,000 of them at
 * every lease behind a stuck webhook. Without it the lease passes them over in the index.
 */
export const m0018OneDueIndex: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.dropIndex('deliveries_due').ifExists().execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.createIndex('deliveries_due').on('deliveries').columns(['status', 'next_attempt_at']).execute();
  },
};
