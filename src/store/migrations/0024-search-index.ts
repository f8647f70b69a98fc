import { sql, SqliteAdapter, type Kysely, type Migration } from 'kysely';

/**
 * The search index: `message_text` holds, per parsed message, the text a search looks in, lower
 * case (subject; sender: From: and MAIL FROM; recipients: To/Cc/Reply-To; rcpt: RCPT TO; the
 * start of the text body). A substring filter over a million rows read every row (p99 > 1 s,
 * with the SMTP loop stalled behind it on SQLite); a trigram index answers it from the index:
 * FTS5's trigram tokenizer on SQLite, pg_trgm GIN indexes on PostgreSQL. Trigrams keep the
 * meaning the filters always had (a case-insensitive substring, so `from:@example.org` works),
 * which word indexes (tsvector, unicode61) would not.
 *
 * Dialect SQL, against the migrations' rule, because neither index exists in the schema builder.
 * Rows kept before this migration are indexed from their columns (no body: it lives in blobs);
 * `postroom reindex` adds the bodies.
 */
export const m0024SearchIndex: Migration = {
  async up(db: Kysely<any>) {
    const sqlite = db.getExecutor().adapter instanceof SqliteAdapter;
    await db.schema
      .createTable('message_text')
      // SQLite: an INTEGER PRIMARY KEY is the rowid the FTS5 index points at (a text key cannot be).
      .addColumn('doc', sqlite ? 'integer' : 'bigserial', (c) => c.primaryKey())
      .addColumn('message', 'varchar(40)', (c) => c.notNull().unique().references('messages.id').onDelete('cascade'))
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('sender', 'text', (c) => c.notNull())
      .addColumn('recipients', 'text', (c) => c.notNull())
      .addColumn('rcpt', 'text', (c) => c.notNull())
      .addColumn('body', 'text', (c) => c.notNull())
      .execute();
    if (sqlite) {
      // External content: the index alone, the text stays in message_text (stored once). Case
      // sensitive because the text and every query are lower-cased by us (one folding,
      // JavaScript's), so GLOB uses the index. detail=none keeps no positions: the index is a
      // sixth of detail=full's (27 → 4.5 MiB for 20,000 short messages), and FTS5 checks each
      // GLOB candidate against the content anyway.
      await sql`create virtual table message_search using fts5(subject, sender, recipients, rcpt, body, content='message_text', content_rowid='doc', tokenize='trigram case_sensitive 1', detail=none)`.execute(db);
      // The index follows its content table, also when a message's deletion cascades to its text.
      const cols = 'subject, sender, recipients, rcpt, body';
      const old = "'delete', old.doc, old.subject, old.sender, old.recipients, old.rcpt, old.body";
      const add = 'new.doc, new.subject, new.sender, new.recipients, new.rcpt, new.body';
      await sql.raw(`create trigger message_text_ai after insert on message_text begin insert into message_search (rowid, ${cols}) values (${add}); end`).execute(db);
      await sql.raw(`create trigger message_text_ad after delete on message_text begin insert into message_search (message_search, rowid, ${cols}) values (${old}); end`).execute(db);
      await sql.raw(`create trigger message_text_au after update on message_text begin insert into message_search (message_search, rowid, ${cols}) values (${old}); insert into message_search (rowid, ${cols}) values (${add}); end`).execute(db);
    } else {
      await ensurePgTrgm(db);
      // The operator class lives in the extension's schema, which a `?schema=` search_path may not list.
      const ext = await sql<{ schema: string }>`select n.nspname as schema from pg_extension e join pg_namespace n on n.oid = e.extnamespace where e.extname = 'pg_trgm'`.execute(db);
      const ops = sql.raw(`${quoteIdent(ext.rows[0].schema)}.gin_trgm_ops`);
      for (const col of ['subject', 'sender', 'recipients', 'rcpt', 'body']) {
        await sql`create index ${sql.raw(`message_text_${col}_trgm`)} on message_text using gin (${sql.ref(col)} ${ops})`.execute(db);
      }
    }
    const lower = (e: string) => sql.raw(`lower(coalesce(${e}, ''))`);
    await sql`insert into message_text (message, subject, sender, recipients, rcpt, body)
      select id, ${lower('subject')}, ${lower(`coalesce(from_addr, '') || ' ' || mail_from`)}, ${lower('addresses')}, ${lower('rcpt_to')}, ''
      from messages where parsed_at is not null`.execute(db);
  },
  async down(db: Kysely<any>) {
    if (db.getExecutor().adapter instanceof SqliteAdapter) {
      for (const t of ['message_text_ai', 'message_text_ad', 'message_text_au']) await sql.raw(`drop trigger if exists ${t}`).execute(db);
      await sql`drop table if exists message_search`.execute(db);
    }
    await db.schema.dropTable('message_text').execute();
  },
};

function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/**
 * pg_trgm, created once per database. In `public` when there is one: created by default into the
 * first schema of a `?schema=` search_path, it would belong to that schema, and dropping the
 * schema (CASCADE) would drop the extension and every other schema's trigram indexes with it.
 * Two nodes (or tests) migrating different schemas at once may both try to create it; the loser's
 * error (a unique violation on pg_extension) is taken back with a savepoint, since the migration
 * runs in a transaction that the error would otherwise abort.
 */
async function ensurePgTrgm(db: Kysely<any>): Promise<void> {
  const exists = async () => (await sql`select 1 from pg_extension where extname = 'pg_trgm'`.execute(db)).rows.length > 0;
  if (await exists()) return;
  const hasPublic = (await sql`select 1 from pg_namespace where nspname = 'public'`.execute(db)).rows.length > 0;
  await sql`savepoint create_pg_trgm`.execute(db);
  try {
    await (hasPublic ? sql`create extension if not exists pg_trgm with schema public` : sql`create extension if not exists pg_trgm`).execute(db);
    await sql`release savepoint create_pg_trgm`.execute(db);
  } catch (err) {
    await sql`rollback to savepoint create_pg_trgm`.execute(db);
    if (!(await exists())) throw err;
  }
}
