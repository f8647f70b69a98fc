import type { Kysely, Migration } from 'kysely';

/**
 * The delivery queue. One row per (message, route, target): its id is derived from those three,
 * so planning the same message twice inserts nothing new, and the id is the idempotency key
 * handed to the target. Every attempt is a row of its own so backoff can be seen afterwards.
 */
export const m0002Deliveries: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('deliveries')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('message', 'varchar(40)', (c) => c.notNull().references('messages.id').onDelete('cascade'))
      .addColumn('route', 'text', (c) => c.notNull())
      .addColumn('target_index', 'integer', (c) => c.notNull())
      .addColumn('kind', 'varchar(32)', (c) => c.notNull())
      .addColumn('params', 'text', (c) => c.notNull())
      .addColumn('recipients', 'text', (c) => c.notNull())
      .addColumn('captures', 'text', (c) => c.notNull())
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('first_attempt_at', 'varchar(32)')
      .addColumn('next_attempt_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('lease_owner', 'text')
      .addColumn('lease_until', 'varchar(32)')
      .addColumn('last_error', 'text')
      .addColumn('receipt', 'text')
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    // The lease query: pending rows due by now, oldest due first.
    await db.schema.createIndex('deliveries_due').on('deliveries').columns(['status', 'next_attempt_at']).execute();
    await db.schema.createIndex('deliveries_message').on('deliveries').column('message').execute();
    await db.schema.createIndex('deliveries_route').on('deliveries').columns(['route', 'id']).execute();

    await db.schema
      .createTable('delivery_attempts')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('delivery', 'varchar(40)', (c) => c.notNull().references('deliveries.id').onDelete('cascade'))
      .addColumn('n', 'integer', (c) => c.notNull())
      .addColumn('started_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('finished_at', 'varchar(32)')
      .addColumn('outcome', 'varchar(16)')
      .addColumn('error', 'text')
      .addColumn('enhanced_status', 'varchar(16)')
      .addColumn('next_attempt_at', 'varchar(32)')
      .execute();
    await db.schema.createIndex('delivery_attempts_delivery').on('delivery_attempts').columns(['delivery', 'id']).execute();
  },
  async down(db: Kysely<any>) {
    for (const t of ['delivery_attempts', 'deliveries']) await db.schema.dropTable(t).execute();
  },
};
