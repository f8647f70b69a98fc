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
    // The lease query skips the due deliveries of full or paused destinations, which can be
    // thousands (a stuck webhook's backlog, due first). With their route, target and lease in
    // the index those rows are passed over in the index alone, without reading each row.
    await db.schema
      .createIndex('deliveries_due_target')
      .on('deliveries')
      .columns(['status', 'next_attempt_at', 'route', 'target_index', 'lease_until'])
      .execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropIndex('deliveries_due_target').execute();
    await db.schema.dropTable('paused_targets').execute();
  },
};
