import type { Kysely, Migration } from 'kysely';

/**
 * Mail accounts Postroom fetches from (IMAP, POP3) and sends through (SMTP). A profile holds
 * the server settings several accounts share; an account the credentials (password encrypted
 * at rest, AES-256-GCM); a folder what to do with its mail and how its last poll went.
 * Flags are integers 0/1: the one boolean representation SQLite and PostgreSQL share.
 */
export const m0004MailAccounts: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('mail_profiles')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('protocol', 'varchar(8)', (c) => c.notNull())
      .addColumn('host', 'text', (c) => c.notNull())
      .addColumn('port', 'integer', (c) => c.notNull())
      .addColumn('tls', 'varchar(16)', (c) => c.notNull())
      .addColumn('smtp_host', 'text')
      .addColumn('smtp_port', 'integer')
      .addColumn('smtp_tls', 'varchar(16)')
      .addColumn('options', 'text', (c) => c.notNull())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('mail_accounts')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('profile', 'varchar(40)', (c) => c.notNull().references('mail_profiles.id'))
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('address', 'text')
      .addColumn('username', 'text', (c) => c.notNull())
      .addColumn('password_enc', 'text', (c) => c.notNull())
      .addColumn('options', 'text', (c) => c.notNull())
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('mail_accounts_profile').on('mail_accounts').column('profile').execute();

    await db.schema
      .createTable('mail_folders')
      .addColumn('id', 'varchar(40)', (c) => c.primaryKey())
      .addColumn('account', 'varchar(40)', (c) => c.notNull().references('mail_accounts.id').onDelete('cascade'))
      .addColumn('path', 'text', (c) => c.notNull())
      .addColumn('special_use', 'text')
      .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('delete_on_server', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('move_on_success', 'text')
      .addColumn('move_on_failure', 'text')
      .addColumn('route', 'text')
      .addColumn('recipient', 'text')
      .addColumn('options', 'text', (c) => c.notNull())
      // IMAP UIDVALIDITY is a 32-bit unsigned number: text, so no engine's integer type matters.
      .addColumn('uidvalidity', 'varchar(20)')
      .addColumn('last_uid', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('fetched', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('last_ok_at', 'varchar(32)')
      .addColumn('last_error', 'text')
      .addColumn('last_error_at', 'varchar(32)')
      .addColumn('consecutive_failures', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('mail_folders_account_path').on('mail_folders').columns(['account', 'path']).unique().execute();

    // Which kept message came from (or was sent through) which account and folder.
    await db.schema
      .createTable('mail_links')
      .addColumn('message', 'varchar(40)', (c) => c.notNull().references('messages.id').onDelete('cascade'))
      .addColumn('account', 'varchar(40)', (c) => c.notNull())
      .addColumn('folder', 'varchar(40)')
      .addColumn('kind', 'varchar(16)', (c) => c.notNull())
      .addColumn('uid', 'bigint')
      // The route the folder gives its mail (planning takes it instead of matching recipients).
      .addColumn('route', 'text')
      .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('mail_links_message_folder').on('mail_links').columns(['message', 'folder']).unique().execute();
    await db.schema.createIndex('mail_links_account').on('mail_links').columns(['account', 'message']).execute();
    await db.schema.createIndex('mail_links_folder').on('mail_links').columns(['folder', 'message']).execute();

    // RFC 1939 §7: a UIDL is at most 70 characters and stays the same across sessions.
    await db.schema
      .createTable('pop3_seen')
      .addColumn('folder', 'varchar(40)', (c) => c.notNull().references('mail_folders.id').onDelete('cascade'))
      .addColumn('uidl', 'varchar(80)', (c) => c.notNull())
      .addColumn('message', 'varchar(40)')
      .addColumn('outcome', 'varchar(16)', (c) => c.notNull())
      .addColumn('seen_at', 'varchar(32)', (c) => c.notNull())
      .addPrimaryKeyConstraint('pop3_seen_pk', ['folder', 'uidl'])
      .execute();
  },
  async down(db: Kysely<any>) {
    for (const t of ['pop3_seen', 'mail_links', 'mail_folders', 'mail_accounts', 'mail_profiles']) await db.schema.dropTable(t).execute();
  },
};
