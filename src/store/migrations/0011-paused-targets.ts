import type { Kysely, Migration } from 'kysely';

/**
 * Targets of routes that an endpoint told to go away (HTTP 410 Gone) or an operator paused.
 * Keyed by route and target index, like the deliveries they hold back: the lease query leaves
 * their deliveries alone (pending, not attempted) until the row is removed (resume). Kept in
 * the store, not in memory, so a restart or another node does not hammer a gone endpoint.
 */
export const m0011PausedTargets: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('paused_targets')
      .addColumn('route', 'text', (c) => c.notNull())
      .addColumn('target_index', 'integer', (c) => c.notNull())
      .addColumn('kind', 'varchar(32)', (c) => c.notNull())
      .addColumn('destination', 'text')
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('delivery', 'varchar(40)')
      .addColumn('paused_at', 'varchar(32)', (c) => c.notNull())
      .addPrimaryKeyConstraint('paused_targets_pk', ['route', 'target_index'])
      .execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropTable('paused_targets').execute();
  },
};
