import type { Kysely, Migration } from 'kysely';

/**
 * The built-in tracker: projects and work packages made from mail (the OpenProject/Redmine mail
 * handler). Projects and work packages are objects, so they take their ids from the one shared
 * sequence (`[#12]` and `ogo+12@` name the same thing); everything else has our sortable string
 * ids. Dates are 'YYYY-MM-DD' text and instants ISO-8601 text, as in every other table.
 */
export const m0005Tracker: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('tracker_users')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('login', 'varchar(100)', (c) => c.notNull().unique())
      // Lower-cased: mail addresses are matched without regard to case.
      .addColumn('email', 'varchar(320)', (c) => c.notNull().unique())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('tracker_projects')
      .addColumn('id', 'bigint', (c) => c.primaryKey().references('objects.id').onDelete('cascade'))
      .addColumn('identifier', 'varchar(100)', (c) => c.notNull().unique())
      .addColumn('name', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('tracker_members')
      .addColumn('project', 'bigint', (c) => c.notNull().references('tracker_projects.id').onDelete('cascade'))
      .addColumn('user_id', 'varchar(40)', (c) => c.notNull().references('tracker_users.id').onDelete('cascade'))
      .addPrimaryKeyConstraint('tracker_members_pk', ['project', 'user_id'])
      .execute();

    // Types (the original's trackers), statuses and priorities: global lists told apart by kind.
    await db.schema
      .createTable('tracker_enums')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('kind', 'varchar(16)', (c) => c.notNull())
      .addColumn('name', 'varchar(255)', (c) => c.notNull())
      .addColumn('position', 'integer', (c) => c.notNull())
      .addColumn('is_default', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema.createIndex('tracker_enums_kind_name').on('tracker_enums').columns(['kind', 'name']).unique().execute();

    for (const table of ['tracker_categories', 'tracker_versions']) {
      await db.schema
        .createTable(table)
        .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
        .addColumn('project', 'bigint', (c) => c.notNull().references('tracker_projects.id').onDelete('cascade'))
        .addColumn('name', 'varchar(255)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex(`${table}_project_name`).on(table).columns(['project', 'name']).unique().execute();
    }

    await db.schema
      .createTable('tracker_custom_fields')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('name', 'varchar(255)', (c) => c.notNull().unique())
      // string | integer | date | list
      .addColumn('format', 'varchar(16)', (c) => c.notNull())
      // JSON array of the values a list field takes.
      .addColumn('possible_values', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('tracker_work_packages')
      .addColumn('id', 'bigint', (c) => c.primaryKey().references('objects.id').onDelete('cascade'))
      .addColumn('project', 'bigint', (c) => c.notNull().references('tracker_projects.id').onDelete('cascade'))
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('type', 'varchar(40)', (c) => c.notNull().references('tracker_enums.id'))
      .addColumn('status', 'varchar(40)', (c) => c.notNull().references('tracker_enums.id'))
      .addColumn('priority', 'varchar(40)', (c) => c.notNull().references('tracker_enums.id'))
      .addColumn('author', 'varchar(40)', (c) => c.references('tracker_users.id').onDelete('set null'))
      .addColumn('assignee', 'varchar(40)', (c) => c.references('tracker_users.id').onDelete('set null'))
      .addColumn('category', 'varchar(40)', (c) => c.references('tracker_categories.id').onDelete('set null'))
      .addColumn('version', 'varchar(40)', (c) => c.references('tracker_versions.id').onDelete('set null'))
      .addColumn('start_date', 'varchar(10)')
      .addColumn('due_date', 'varchar(10)')
      .addColumn('done_ratio', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('message', 'varchar(40)')
      // The delivery that created it: a retried delivery finds it instead of creating a second.
      .addColumn('delivery', 'varchar(40)', (c) => c.unique())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('tracker_work_packages_project').on('tracker_work_packages').columns(['project', 'id']).execute();

    await db.schema
      .createTable('tracker_custom_values')
      .addColumn('work_package', 'bigint', (c) => c.notNull().references('tracker_work_packages.id').onDelete('cascade'))
      .addColumn('field', 'varchar(40)', (c) => c.notNull().references('tracker_custom_fields.id').onDelete('cascade'))
      .addColumn('value', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('tracker_custom_values_pk', ['work_package', 'field'])
      .execute();

    await db.schema
      .createTable('tracker_watchers')
      .addColumn('work_package', 'bigint', (c) => c.notNull().references('tracker_work_packages.id').onDelete('cascade'))
      .addColumn('user_id', 'varchar(40)', (c) => c.notNull().references('tracker_users.id').onDelete('cascade'))
      .addPrimaryKeyConstraint('tracker_watchers_pk', ['work_package', 'user_id'])
      .execute();

    await db.schema
      .createTable('tracker_journals')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('work_package', 'bigint', (c) => c.notNull().references('tracker_work_packages.id').onDelete('cascade'))
      // null: the anonymous author (a route with no_permission_check and an unknown sender).
      .addColumn('user_id', 'varchar(40)', (c) => c.references('tracker_users.id').onDelete('set null'))
      .addColumn('notes', 'text', (c) => c.notNull())
      // JSON array of { field, old, new }.
      .addColumn('changes', 'text', (c) => c.notNull())
      .addColumn('message', 'varchar(40)')
      // One journal per delivery: a retried reply adds its note once.
      .addColumn('delivery', 'varchar(40)', (c) => c.unique())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('tracker_journals_work_package').on('tracker_journals').columns(['work_package', 'created_at']).execute();

    await db.schema
      .createTable('tracker_attachments')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('work_package', 'bigint', (c) => c.notNull().references('tracker_work_packages.id').onDelete('cascade'))
      .addColumn('journal', 'varchar(40)', (c) => c.references('tracker_journals.id').onDelete('set null'))
      .addColumn('filename', 'text', (c) => c.notNull())
      .addColumn('content_type', 'text', (c) => c.notNull())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('sha256', 'varchar(64)', (c) => c.notNull())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('tracker_attachments_work_package').on('tracker_attachments').column('work_package').execute();

    // Message-IDs that name a work package: our notifications (a reply's In-Reply-To or
    // References points back at N) and the mails that created or updated it.
    await db.schema
      .createTable('tracker_mail_ids')
      .addColumn('message_id', 'varchar(998)', (c) => c.primaryKey())
      .addColumn('work_package', 'bigint', (c) => c.notNull().references('tracker_work_packages.id').onDelete('cascade'))
      // notification | incoming
      .addColumn('kind', 'varchar(16)', (c) => c.notNull())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<any>) {
    for (const t of [
      'tracker_mail_ids',
      'tracker_attachments',
      'tracker_journals',
      'tracker_watchers',
      'tracker_custom_values',
      'tracker_work_packages',
      'tracker_custom_fields',
      'tracker_versions',
      'tracker_categories',
      'tracker_enums',
      'tracker_members',
      'tracker_projects',
      'tracker_users',
    ]) {
      await db.schema.dropTable(t).execute();
    }
  },
};
