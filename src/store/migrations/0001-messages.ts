import type { Kysely, Migration } from 'kysely';

export const m0001Messages: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('messages')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('ingress', 'varchar(16)', (c) => c.notNull())
      .addColumn('mail_from', 'text', (c) => c.notNull())
      .addColumn('rcpt_to', 'text', (c) => c.notNull())
      .addColumn('client_ip', 'text')
      .addColumn('helo', 'text')
      .addColumn('auth_user', 'text')
      .addColumn('received_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('message_id', 'text')
      .addColumn('subject', 'text')
      .addColumn('from_addr', 'text')
      .addColumn('date', 'varchar(32)')
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('raw_sha256', 'varchar(64)', (c) => c.notNull())
      .addColumn('trace', 'text')
      .addColumn('dedup_key', 'varchar(64)', (c) => c.unique())
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('error', 'text')
      .addColumn('headers', 'text')
      .addColumn('addresses', 'text')
      .addColumn('parsed_at', 'varchar(32)')
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('messages_status').on('messages').columns(['status', 'id']).execute();
    await db.schema.createIndex('messages_received_at').on('messages').column('received_at').execute();
    await db.schema.createIndex('messages_message_id').on('messages').column('message_id').execute();

    await db.schema
      .createTable('parts')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('message', 'varchar(40)', (c) => c.notNull().references('messages.id').onDelete('cascade'))
      .addColumn('idx', 'integer', (c) => c.notNull())
      .addColumn('kind', 'varchar(16)', (c) => c.notNull())
      .addColumn('filename', 'text')
      .addColumn('original_filename', 'text')
      .addColumn('content_type', 'text', (c) => c.notNull())
      .addColumn('content_id', 'text')
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('sha256', 'varchar(64)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('parts_message').on('parts').columns(['message', 'idx']).unique().execute();

    // Blobs kept in the database (PostgreSQL deployments without a shared file system).
    // 'bytea' is PostgreSQL's binary type; SQLite stores a Buffer as a BLOB under any type name.
    await db.schema
      .createTable('blobs')
      .addColumn('sha256', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('blob_chunks')
      .addColumn('sha256', 'varchar(64)', (c) => c.notNull())
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('data', 'bytea', (c) => c.notNull())
      .addPrimaryKeyConstraint('blob_chunks_pk', ['sha256', 'seq'])
      .execute();
  },
  async down(db: Kysely<any>) {
    for (const t of ['blob_chunks', 'blobs', 'parts', 'messages']) await db.schema.dropTable(t).execute();
  },
};
