import { sql, SqliteAdapter, type Kysely, type SqlBool, type Transaction } from 'kysely';
import { SEARCH_BODY_CHARS } from '../core/message-search.js';
import type { SearchColumn, SearchDoc, SearchIndex } from './ports.js';
import type { Database } from './schema.js';

type Q = Kysely<Database> | Transaction<Database>;


/** Trigram indexes answer substrings of three characters or more. */
export const MIN_INDEXED_CHARS = 3;

/**
 * Between the values of one column (a sender's From: and MAIL FROM, each recipient): a
 * noncharacter that no query term may hold (textMatch matches nothing then), so no substring
 * spans two values.
 */
const SEP = '\uffff';

/** The search's one case folding, used for the text and for every query term alike. */
export function foldText(s: string): string {
  // NUL: PostgreSQL refuses it in text; SEP: kept for separating values.
  return s.toLowerCase().replace(/[\u0000\uffff]/g, '\ufffd');
}

/** A query term in the search's case folding (kept as given otherwise: textMatch refuses what no text holds). */
export function foldQuery(s: string): string {
  return s.toLowerCase();
}

/** What parsing gives for one message, as its search document. */
export function searchDoc(m: {
  message: string;
  subject: string | null;
  from: string | null;
  mailFrom: string;
  rcptTo: readonly string[];
  addresses: Record<string, unknown> | null;
  body: string | null;
}): SearchDoc {
  const list = (key: string) => {
    const v = m.addresses?.[key];
    return Array.isArray(v) ? v.map((a: { name?: unknown; address?: unknown }) => [a?.name, a?.address].filter((x) => typeof x === 'string' && x).join(' ')) : [];
  };
  const join = (vs: readonly (string | null)[]) => vs.filter((v): v is string => !!v).map(foldText).join(SEP);
  return {
    message: m.message,
    subject: join([m.subject]),
    sender: join([m.from, m.mailFrom]),
    recipients: join([...list('to'), ...list('cc'), ...list('replyTo')]),
    rcpt: join(m.rcptTo),
    body: join([m.body ? m.body.slice(0, SEARCH_BODY_CHARS) : null]),
  };
}

/** A LIKE pattern for a substring (escape character `\`). */
export function likeContains(needle: string): string {
  return `%${needle.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** Whether a needle can hold a match at all (see SEP). */
function matchable(needle: string): boolean {
  return !needle.includes(SEP) && !needle.includes('\u0000');
}

/** The indexed message's `cols` contain `needle` (already folded): a per-row test, no index. */
export function textMatch(cols: readonly SearchColumn[], needle: string) {
  if (!matchable(needle)) return sql<SqlBool>`1 = 0`;
  const p = likeContains(needle);
  const any = sql.join(
    cols.map((c) => sql`${sql.ref(`t.${c}`)} like ${p} escape '\\'`),
    sql` or `,
  );
  return sql<SqlBool>`exists (select 1 from message_text t where t.message = messages.id and (${any}))`;
}

async function putDocs(trx: Q, docs: SearchDoc[]): Promise<void> {
  // 7 values a row: far below either database's bound-parameter limit.
  for (let at = 0; at < docs.length; at += 500) {
    await trx
      .insertInto('message_text')
      .values(docs.slice(at, at + 500))
      .onConflict((oc) =>
        oc.column('message').doUpdateSet((eb) => ({
          subject: eb.ref('excluded.subject'),
          sender: eb.ref('excluded.sender'),
          recipients: eb.ref('excluded.recipients'),
          rcpt: eb.ref('excluded.rcpt'),
          body: eb.ref('excluded.body'),
        })),
      )
      .execute();
  }
}

function indexable(needle: string): boolean {
  return [...needle].length >= MIN_INDEXED_CHARS && matchable(needle);
}

/** A GLOB pattern for a substring: `*`, `?` and `[` stand for themselves inside brackets. */
function globContains(needle: string): string {
  return `*${needle.replace(/[*?[]/g, (c) => `[${c}]`)}*`;
}

/** A trigram in more rows than this does not narrow a search: the lookup leaves it out. */
const NARROW_TRIGRAM = 300;

/** FTS5 query text for one token, never query syntax (NEAR, *, ^, column filters stay text). */
function ftsToken(t: string): string {
  return `"${t.replace(/"/g, '""')}"`;
}

/**
 * SQLite: FTS5 with the trigram tokenizer. Asked for the whole substring (GLOB '*…*'), FTS5
 * intersects the row lists of every trigram in it, and an address shares most of its trigrams
 * with every other (`use`, `@ma`, `.ex`…): 100–300 ms for one sender among 200,000 rows. So the
 * lookup first counts each trigram's rows (up to NARROW_TRIGRAM, a short read each), intersects
 * only the rarest three, and checks those few rows against the whole substring. A trigram in no
 * row means no match at all; no rare trigram means a common term, left to the walk.
 */
const sqliteIndex: SearchIndex = {
  put: putDocs,
  async lookup(db, cols, needle, cap) {
    if (!indexable(needle)) return undefined;
    const chars = Array.from(needle);
    const trigrams = [...new Set(chars.slice(0, -2).map((_, i) => chars.slice(i, i + 3).join('')))];
    const counted: { t: string; n: number }[] = [];
    for (const t of trigrams) {
      const r = await sql<{ n: number }>`select count(*) as n from (select rowid from message_search where message_search match ${ftsToken(t)} limit ${NARROW_TRIGRAM})`.execute(db);
      const n = Number(r.rows[0]?.n ?? 0);
      if (n === 0) return [];
      counted.push({ t, n });
    }
    const rare = counted.filter((c) => c.n < NARROW_TRIGRAM).sort((x, y) => x.n - y.n).slice(0, 3);
    if (!rare.length) return undefined;
    const match = rare.map((c) => ftsToken(c.t)).join(' AND ');
    const p = globContains(needle);
    const any = sql.join(
      cols.map((c) => sql`${sql.ref(`t.${c}`)} glob ${p}`),
      sql` or `,
    );
    const rows = await sql<{ message: string }>`select t.message from message_text t where t.doc in (select rowid from message_search where message_search match ${match}) and (${any}) limit ${cap + 1}`.execute(db);
    return rows.rows.length > cap ? undefined : rows.rows.map((r) => r.message);
  },
};

/** PostgreSQL: pg_trgm GIN indexes, which the planner uses for LIKE '%…%'. */
const pgIndex: SearchIndex = {
  put: putDocs,
  async lookup(db, cols, needle, cap) {
    if (!indexable(needle)) return undefined;
    const p = likeContains(needle);
    const any = sql.join(
      cols.map((c) => sql`${sql.ref(c)} like ${p} escape '\\'`),
      sql` or `,
    );
    const rows = await sql<{ message: string }>`select message from message_text where ${any} limit ${cap + 1}`.execute(db);
    return rows.rows.length > cap ? undefined : rows.rows.map((r) => r.message);
  },
};

/** The search index of the store behind `db`. */
export function searchIndexOf(db: Q): SearchIndex {
  return db.getExecutor().adapter instanceof SqliteAdapter ? sqliteIndex : pgIndex;
}
