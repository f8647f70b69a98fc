import type { Kysely, Migration } from 'kysely';

/**
 * What each recipient of a delivery that takes several at once (a forward: one SMTP
 * transaction, one RCPT TO each) came to: done, deferred (retried) or failed (bounced), with
 * the remote reply. A retry then sends only to the deferred ones instead of everyone again, and
 * a delivery that dies can name in its DSN the recipients still undelivered, with their last
 * reply.
 */
export const m0014DeliveryRecipients: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('delivery_recipients')
      .addColumn('delivery', 'text', (c) => c.notNull().references('deliveries.id').onDelete('cascade'))
      .addColumn('recipient', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('reply', 'text')
      .addColumn('enhanced_status', 'text')
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('delivery_recipients_pk', ['delivery', 'recipient'])
      .execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropTable('delivery_recipients').execute();
  },
};
