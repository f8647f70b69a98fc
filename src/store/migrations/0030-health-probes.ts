import { sql, type Kysely, type Migration } from 'kysely';

/**
 * What GET /readyz writes and the metrics read. `health_probes`: one row per node, rewritten by
 * each readiness check, so "the store is writable" is a committed, synced write and not a
 * `select 1` (which a read-only file, a full disk or a hot standby still answers).
 * `deliveries_pending_age`: the oldest pending delivery for `postroom_delivery_oldest_pending_seconds`
 * on every scrape, as one index step; partial, so it holds the queue and not the delivered history.
 */
export const m0030HealthProbes: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('health_probes')
      .addColumn('node', 'varchar(255)', (c) => c.primaryKey())
      .addColumn('probed_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('deliveries_pending_age').on('deliveries').column('created_at').where(sql<boolean>`status = 'pending'`).execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropIndex('deliveries_pending_age').execute();
    await db.schema.dropTable('health_probes').execute();
  },
};
