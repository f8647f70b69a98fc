import { PostgresAdapter, type Kysely, type Migration } from 'kysely';

/**
 * Built-in objects reachable by address (`ogo+12345@`): folders, documents, workflows and
 * processes share one numeric id sequence, so one number names any of them. The id is the one
 * column whose type differs by engine: SQLite's INTEGER PRIMARY KEY AUTOINCREMENT (never reuses
 * an id, even after a delete) and PostgreSQL's identity column (SQL:2003, no serial sequence
 * to own by hand). Everything else is schema-builder types that both engines take.
 */
export const m0003Objects: Migration = {
  async up(db: Kysely<any>) {
    const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
    await db.schema
      .createTable('objects')
      .addColumn('id', postgres ? 'bigint' : 'integer', (c) =>
        postgres ? c.primaryKey().generatedAlwaysAsIdentity() : c.primaryKey().autoIncrement(),
      )
      .addColumn('kind', 'varchar(16)', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('parent', 'bigint', (c) => c.references('objects.id').onDelete('cascade'))
      .addColumn('properties', 'text', (c) => c.notNull())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    // A name is unique within its parent (a folder's documents are files; WebDAV paths by name).
    // Root objects (parent NULL) are not constrained: NULLs are distinct in both engines.
    await db.schema.createIndex('objects_parent_name').on('objects').columns(['parent', 'name']).unique().execute();
    await db.schema.createIndex('objects_kind').on('objects').columns(['kind', 'id']).execute();

    await db.schema
      .createTable('acl')
      .addColumn('object', 'bigint', (c) => c.notNull().references('objects.id').onDelete('cascade'))
      .addColumn('principal', 'text', (c) => c.notNull())
      .addColumn('permissions', 'varchar(16)', (c) => c.notNull())
      .addPrimaryKeyConstraint('acl_pk', ['object', 'principal'])
      .execute();

    // Namespaced properties ({urn:postroom:mail-header}subject) of any object, searchable.
    await db.schema
      .createTable('object_properties')
      .addColumn('object', 'bigint', (c) => c.notNull().references('objects.id').onDelete('cascade'))
      .addColumn('namespace', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('value', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('object_properties_pk', ['object', 'namespace', 'name'])
      .execute();
    await db.schema.createIndex('object_properties_lookup').on('object_properties').columns(['namespace', 'name', 'value']).execute();

    await db.schema
      .createTable('documents')
      .addColumn('id', 'bigint', (c) => c.primaryKey().references('objects.id').onDelete('cascade'))
      .addColumn('sha256', 'varchar(64)', (c) => c.notNull())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('content_type', 'text', (c) => c.notNull())
      .addColumn('message', 'varchar(40)')
      .addColumn('delivery', 'varchar(40)')
      .execute();
    await db.schema.createIndex('documents_delivery').on('documents').column('delivery').execute();

    await db.schema
      .createTable('workflows')
      .addColumn('id', 'bigint', (c) => c.primaryKey().references('objects.id').onDelete('cascade'))
      .addColumn('name', 'varchar(64)', (c) => c.notNull().unique())
      .addColumn('input', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('processes')
      .addColumn('id', 'bigint', (c) => c.primaryKey().references('objects.id').onDelete('cascade'))
      .addColumn('workflow', 'bigint', (c) => c.notNull().references('workflows.id').onDelete('cascade'))
      .addColumn('message', 'varchar(40)')
      .addColumn('delivery', 'varchar(40)')
      .addColumn('state', 'varchar(16)', (c) => c.notNull())
      .addColumn('disposition', 'varchar(16)')
      .addColumn('input_type', 'text')
      .addColumn('input_sha256', 'varchar(64)')
      .addColumn('input_size', 'bigint')
      .addColumn('output', 'bigint')
      .addColumn('exit_code', 'integer')
      .addColumn('status', 'text')
      .addColumn('error', 'text')
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('started_at', 'varchar(32)')
      .addColumn('finished_at', 'varchar(32)')
      .execute();
    // One process per delivery: a retried delivery runs the same process again, never a second.
    await db.schema.createIndex('processes_delivery').on('processes').columns(['workflow', 'delivery']).unique().execute();
  },
  async down(db: Kysely<any>) {
    for (const t of ['processes', 'workflows', 'documents', 'object_properties', 'acl', 'objects']) await db.schema.dropTable(t).execute();
  },
};
