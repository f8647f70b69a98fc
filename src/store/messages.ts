import type { AuthVerdict } from '../core/auth.js';
import { sql, type Kysely, type SqlBool, type Transaction } from 'kysely';
import { createHash } from 'node:crypto';
import type { Envelope, HeaderLine, MessageStatus, ParseStatus, StoredMessage, StoredPart } from '../core/message.js';
import type { MimeDefect } from '../core/mime-defects.js';
import type { SearchTerm } from '../core/message-search.js';
import { relaxedTransaction } from './db.js';
import type { MessageFilter, MessagePage } from './message-filter.js';
import type { SearchColumn } from './ports.js';
import { foldQuery, likeContains, searchDoc, searchIndexOf, textMatch } from './search-index.js';
import type { Database, MessagesTable, PartsTable } from './schema.js';

type Q = Kysely<Database> | Transaction<Database>;

/**
 * The key that makes a retransmission (same Message-ID, bytes and recipients) one message.
 * Without a Message-ID there is no key, unless the ingress names a `scope` in which the same
 * bytes are the same message (a fetched mailbox folder: a re-fetch after a crash or a
 * UIDVALIDITY change must not keep the message twice).
 */
export function dedupKey(messageId: string | null, sha256: string, rcptTo: string[], scope?: string): string | null {
  if (!messageId && !scope) return null;
  const rcpts = [...new Set(rcptTo.map((r) => r.toLowerCase()))].sort().join(',');
  const id = messageId ?? `\0scope:${scope}`;
  return createHash('sha256').update(`${id}\0${sha256}\0${rcpts}`).digest('hex');
}

/** A messages row for a newly kept message. */
export function newMessageRow(
  id: string,
  env: Envelope,
  blob: { sha256: string; size: number },
  head: { messageId: string | null; subject: string | null; from: string | null; date: string | null; contentSha256?: string | null },
  trace: string | null,
  dedupScope?: string,
): MessagesTable {
  const now = new Date().toISOString();
  return {
    id,
    ingress: env.ingress,
    mail_from: env.mailFrom,
    rcpt_to: JSON.stringify(env.rcptTo),
    client_ip: env.clientIp ?? null,
    helo: env.helo ?? null,
    auth_user: env.authUser ?? null,
    received_at: env.receivedAt.toISOString(),
    message_id: head.messageId,
    subject: head.subject,
    from_addr: head.from,
    date: head.date,
    size: blob.size,
    raw_sha256: blob.sha256,
    trace,
    dedup_key: dedupKey(head.messageId, blob.sha256, env.rcptTo, dedupScope),
    status: 'received',
    error: null,
    parse_status: 'pending',
    parse_error: null,
    defects: null,
    handoff: null,
    headers: null,
    addresses: null,
    parsed_at: null,
    updated_at: now,
    post_time: env.timeSource === 'message' ? head.date : null,
    content_sha256: head.contentSha256 ?? null,
    duplicate_of: null,
    auth: null,
  };
}

/** A row as the StoredMessage contract. */
export function toStoredMessage(r: MessagesTable): StoredMessage {
  return {
    id: r.id,
    ingress: r.ingress,
    mailFrom: r.mail_from,
    rcptTo: JSON.parse(r.rcpt_to) as string[],
    clientIp: r.client_ip,
    helo: r.helo,
    authUser: r.auth_user,
    receivedAt: r.received_at,
    messageId: r.message_id,
    subject: r.subject,
    from: r.from_addr,
    date: r.date,
    size: Number(r.size),
    rawSha256: r.raw_sha256,
    trace: r.trace,
    status: r.status as MessageStatus,
    error: r.error,
    contentSha256: r.content_sha256,
    duplicateOf: r.duplicate_of,
    pinnedAt: r.pinned_at ?? null,
    parseStatus: r.parse_status as ParseStatus,
    parseError: r.parse_error,
    defects: r.defects ? (JSON.parse(r.defects) as MimeDefect[]) : [],
    auth: r.auth ? (JSON.parse(r.auth) as AuthVerdict) : null,
  };
}

/** A parts row as the StoredPart contract. */
export function toStoredPart(r: PartsTable): StoredPart {
  return {
    id: r.id,
    messageId: r.message,
    idx: r.idx,
    kind: r.kind as StoredPart['kind'],
    filename: r.filename,
    originalFilename: r.original_filename,
    contentType: r.content_type,
    contentId: r.content_id,
    size: Number(r.size),
    sha256: r.sha256,
  };
}

/**
 * Insert rows in one transaction. A row whose dedup key is already kept is not inserted; the
 * earlier message is returned in its place, marked duplicate.
 */
export async function insertMessages(trx: Q, rows: MessagesTable[]): Promise<StoredMessage[]> {
  if (!rows.length) return [];
  // In dedup-key order: two nodes inserting the same retransmissions take the unique-index
  // locks in the same order, so one waits for the other instead of both deadlocking (PostgreSQL).
  const ordered = [...rows].sort((a, b) => ((a.dedup_key ?? '') < (b.dedup_key ?? '') ? -1 : 1));
  const inserted = await trx
    .insertInto('messages')
    .values(ordered)
    .onConflict((oc) => oc.column('dedup_key').doNothing())
    .returning('id')
    .execute();
  const ok = new Set(inserted.map((r) => r.id));
  const out: StoredMessage[] = [];
  for (const row of rows) {
    if (ok.has(row.id)) {
      out.push(toStoredMessage(row));
      continue;
    }
    // Either an earlier transaction kept it, or an earlier row of this same batch did.
    const prior =
      rows.find((r) => r !== row && r.dedup_key === row.dedup_key && ok.has(r.id)) ??
      (await trx.selectFrom('messages').selectAll().where('dedup_key', '=', row.dedup_key).executeTakeFirst());
    if (!prior) throw new Error(`message ${row.id} was neither inserted nor found by dedup key`);
    out.push({ ...toStoredMessage(prior), duplicate: true });
  }
  return out;
}

/** One message by id, or undefined. */
export async function getMessage(db: Q, id: string): Promise<StoredMessage | undefined> {
  const r = await db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? toStoredMessage(r) : undefined;
}

/** What parsing recorded on a message row: its headers (in order) and addresses. */
export interface ParsedDetail {
  headers: HeaderLine[];
  addresses: Record<string, unknown> | null;
  parsedAt: string | null;
}

function parsedDetail(r: Pick<MessagesTable, 'headers' | 'addresses' | 'parsed_at'>): ParsedDetail {
  return {
    headers: r.headers ? (JSON.parse(r.headers) as HeaderLine[]) : [],
    addresses: r.addresses ? (JSON.parse(r.addresses) as Record<string, unknown>) : null,
    parsedAt: r.parsed_at,
  };
}

/** Headers (in order) and addresses of a parsed message. */
export async function getParsedDetail(db: Q, id: string): Promise<ParsedDetail | undefined> {
  const r = await db
    .selectFrom('messages')
    .select(['headers', 'addresses', 'parsed_at'])
    .where('id', '=', id)
    .executeTakeFirst();
  return r ? parsedDetail(r) : undefined;
}

/** A message and what parsing recorded on it, from one read of its row. */
export async function getMessageWithDetail(db: Q, id: string): Promise<{ message: StoredMessage; detail: ParsedDetail } | undefined> {
  const r = await db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? { message: toStoredMessage(r), detail: parsedDetail(r) } : undefined;
}

/** Parts of a message, in order. */
export async function getParts(db: Q, messageId: string): Promise<StoredPart[]> {
  const rows = await db.selectFrom('parts').selectAll().where('message', '=', messageId).orderBy('idx').execute();
  return rows.map(toStoredPart);
}

export type { MessageFilter, MessagePage } from './message-filter.js';

/**
 * At most this many matches are taken from the search index for one term. A term matching
 * more is common, and a walk of the newest rows finds a page of it soon; a rarer one is answered
 * from the index, however old its matches.
 */
export const INDEX_CAP = 2000;

/** Which search columns a text filter looks in. */
const TERM_COLUMNS: Partial<Record<SearchTerm['field'], readonly SearchColumn[]>> = {
  text: ['subject', 'sender', 'recipients', 'rcpt', 'body'],
  from: ['sender'],
  to: ['recipients'],
  rcpt: ['rcpt'],
  subject: ['subject'],
};

/** Before parsing there is no search document: what intake wrote on the row stands in for it. */
const UNPARSED_COLUMNS: Record<SearchColumn, TextColumn[]> = {
  subject: ['subject'],
  sender: ['from_addr', 'mail_from'],
  recipients: [],
  rcpt: ['rcpt_to'],
  body: [],
};

interface TextTerm {
  cols: readonly SearchColumn[];
  needle: string;
  negate: boolean;
}

function textTerms(f: MessageFilter): TextTerm[] {
  const out: TextTerm[] = [];
  if (f.subject) out.push({ cols: ['subject'], needle: foldQuery(f.subject), negate: false });
  if (f.from) out.push({ cols: ['sender'], needle: foldQuery(f.from), negate: false });
  if (f.rcpt) out.push({ cols: ['rcpt'], needle: foldQuery(f.rcpt), negate: false });
  for (const t of f.search ?? []) {
    const cols = TERM_COLUMNS[t.field];
    if (cols) out.push({ cols, needle: foldQuery(t.value), negate: t.negate });
  }
  return out;
}

/** A text term on one row: its search document, or, before it is parsed, its own columns. */
function textCondition(t: TextTerm) {
  const unparsed = t.cols.flatMap((c) => UNPARSED_COLUMNS[c]);
  const before = unparsed.length ? sql<SqlBool>` or (parse_status = 'pending' and ${anyOf(unparsed, t.needle)})` : sql``;
  return sql<SqlBool>`(${textMatch(t.cols, t.needle)}${before})`;
}

/**
 * The messages a text term names when the index knows them all (and the unparsed ones that
 * match), or undefined when it matches too many to list.
 */
async function termCandidates(db: Q, t: TextTerm): Promise<string[] | undefined> {
  // The unparsed rows first, the index second: a message parsed between the two reads is then
  // in the second (its search document commits with its parse outcome). In the other order it
  // was in neither, and a page missed it (seen under load on PostgreSQL).
  const unparsed = t.cols.flatMap((c) => UNPARSED_COLUMNS[c]);
  const pending = unparsed.length
    ? await db.selectFrom('messages').select('id').where('parse_status', '=', 'pending').where(anyOf(unparsed, t.needle)).limit(INDEX_CAP + 1).execute()
    : [];
  if (pending.length > INDEX_CAP) return undefined;
  const indexed = await searchIndexOf(db).lookup(db, t.cols, t.needle, INDEX_CAP);
  if (!indexed) return undefined;
  return [...new Set([...indexed, ...pending.map((r) => r.id)])];
}

/** Messages newest first, filtered; `before` is the cursor (an id). */
export async function listMessages(db: Q, f: MessageFilter): Promise<StoredMessage[]> {
  return (await listMessagePage(db, f)).rows;
}

/**
 * listMessages, and where it stopped. Text terms the index can answer (a rare substring)
 * become a list of ids; the rest are tested row by row, newest first, within `window` rows.
 */
export async function listMessagePage(db: Q, f: MessageFilter): Promise<MessagePage> {
  const terms = textTerms(f);
  let ids: Set<string> | undefined;
  const perRow: TextTerm[] = [];
  for (const t of terms) {
    const found = t.negate ? undefined : await termCandidates(db, t);
    if (!found) {
      perRow.push(t);
      continue;
    }
    ids = ids ? new Set(found.filter((id) => ids!.has(id))) : new Set(found);
    if (!ids.size) return { rows: [] };
  }
  const walked = perRow.length > 0 || (f.search ?? []).some((t) => !TERM_COLUMNS[t.field]);
  const floor = !ids && walked && f.window ? await messageIdAtDepth(db, f.before, f.window - 1) : undefined;
  let q = db.selectFrom('messages').selectAll().orderBy('id', f.oldestFirst ? 'asc' : 'desc').limit(f.limit);
  if (ids) q = q.where('id', 'in', [...ids]);
  // Timestamps are stored as toISOString() text and compared as text: '…T00:00:00Z' sorts after
  // '…T00:00:00.000Z', so a bound must be written the same way before it is compared.
  if (f.since) q = q.where('received_at', '>=', isoText(f.since));
  if (f.until) q = q.where('received_at', '<', isoText(f.until));
  // `raw` was once a status that delivery overwrote; it now names the parse outcome, which lasts.
  if (f.status === 'raw') q = q.where('parse_status', '=', 'raw');
  else if (f.status) q = q.where('status', '=', f.status);
  if (f.parse) q = q.where('parse_status', '=', f.parse);
  if (f.ingress) q = q.where('ingress', '=', f.ingress);
  if (f.id) q = q.where('id', '=', f.id);
  if (f.before) q = q.where('id', '<', f.before);
  if (f.after) q = q.where('id', '>', f.after);
  const atLeast = [f.atLeast, floor].filter((x): x is string => !!x).sort().pop();
  if (atLeast) q = q.where('id', '>=', atLeast);
  if (f.account || f.folder) {
    q = q.where('id', 'in', (eb) => {
      let links = eb.selectFrom('mail_links').select('mail_links.message');
      if (f.account) links = links.where('mail_links.account', '=', f.account);
      if (f.folder) links = links.where('mail_links.folder', '=', f.folder);
      return links;
    });
  }
  for (const t of perRow) q = q.where(t.negate ? sql<SqlBool>`not ${textCondition(t)}` : textCondition(t));
  for (const t of f.search ?? []) {
    if (TERM_COLUMNS[t.field]) continue;
    const cond = searchCondition(t);
    q = q.where(t.negate ? sql<SqlBool>`not (${cond})` : cond);
  }
  return { rows: (await q.execute()).map(toStoredMessage), floor };
}

/**
 * The id `depth` rows below `before` (newest first), or undefined when fewer rows are left: the
 * floor of a bounded search window. A walk of the primary-key index, no table rows read.
 */
export async function messageIdAtDepth(db: Q, before: string | undefined, depth: number): Promise<string | undefined> {
  let q = db.selectFrom('messages').select('id').orderBy('id', 'desc').limit(1).offset(depth);
  if (before) q = q.where('id', '<', before);
  return (await q.executeTakeFirst())?.id;
}

type TextColumn = 'subject' | 'rcpt_to' | 'from_addr' | 'mail_from' | 'message_id';

/**
 * A case-insensitive substring of a row's own column (lower() + LIKE reads the same on SQLite
 * and PostgreSQL, whose LIKE is case-sensitive; SQLite has no default escape character). NULL
 * counts as '' so that a negated term keeps messages without the value.
 */
function has(col: TextColumn, s: string) {
  return sql<SqlBool>`lower(coalesce(${sql.ref(col)}, '')) like ${likeContains(s.toLowerCase())} escape '\\'`;
}

function anyOf(cols: TextColumn[], s: string) {
  return sql<SqlBool>`(${sql.join(cols.map((c) => has(c, s)), sql` or `)})`;
}

/** A search term that is not a text term (textCondition) as a condition on one row. */
function searchCondition(t: SearchTerm) {
  switch (t.field) {
    case 'message-id':
      return has('message_id', t.value.replace(/^<|>$/g, ''));
    case 'status':
      return t.value === 'raw' ? sql<SqlBool>`parse_status = 'raw'` : sql<SqlBool>`status = ${t.value}`;
    case 'route':
      return sql<SqlBool>`exists (select 1 from deliveries d where d.message = messages.id and d.route = ${t.value})`;
    case 'ingress':
      return sql<SqlBool>`ingress = ${t.value}`;
    case 'has':
      return sql<SqlBool>`exists (select 1 from parts p where p.message = messages.id and p.kind = 'attachment')`;
    case 'before':
      return sql<SqlBool>`received_at < ${isoText(t.value)}`;
    case 'after':
      return sql<SqlBool>`received_at >= ${isoText(t.value)}`;
    case 'larger':
      return sql<SqlBool>`size > ${Number(t.value)}`;
    case 'smaller':
      return sql<SqlBool>`size < ${Number(t.value)}`;
    default:
      // The text fields go through textCondition.
      return sql<SqlBool>`1 = 1`;
  }
}

/** Messages kept as raw (could not be parsed), counted by their routing/delivery status. */
export async function countRawByStatus(db: Q): Promise<{ status: string; n: number }[]> {
  const rows = await db
    .selectFrom('messages')
    .select((eb) => ['status', eb.fn.countAll<string | number>().as('n')])
    .where('parse_status', '=', 'raw')
    .groupBy('status')
    .execute();
  return rows.map((r) => ({ status: r.status, n: Number(r.n) }));
}

/** A time bound as stored text (toISOString); left as given if it is not a date. */
function isoText(v: string): string {
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? v : d.toISOString();
}

/** Ids of kept messages not yet parsed, oldest first (the parse queue after a restart). */
export async function listUnparsed(db: Q, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom('messages')
    .select('id')
    .where('parsed_at', 'is', null)
    .orderBy('id')
    .limit(limit)
    .execute();
  return rows.map((r) => r.id);
}

/** What parsing found out about a message, as saveParsed records it. */
export interface ParsedRows {
  headers: HeaderLine[];
  addresses: Record<string, unknown>;
  subject: string | null;
  from: string | null;
  date: string | null;
  parts: PartsTable[];
  /** parsed, or raw when the message could not be parsed (with the reason in parseError). */
  parseStatus: Exclude<ParseStatus, 'pending'>;
  parseError?: string | null;
  /** What was wrong with the message though it parsed (core/mime-defects.ts names, in catalogue order). */
  defects?: MimeDefect[];
  /** The text body, for the search index (its start is indexed: SEARCH_BODY_CHARS). */
  bodyText?: string | null;
}

/**
 * Record the result of parsing: parts, ordered headers, addresses, decoded header fields.
 * Derived from the kept raw bytes, so committed without an fsync of its own (relaxedTransaction).
 */
export async function saveParsed(db: Kysely<Database>, id: string, result: ParsedRows): Promise<void> {
  await relaxedTransaction(db, (trx) => writeParsed(trx, id, result));
}

/** saveParsed's writes, inside a transaction of the caller's (which may also commit the parts' blobs). */
export async function writeParsed(trx: Transaction<Database>, id: string, result: ParsedRows): Promise<void> {
  await writeParsedMany(trx, [{ id, result }]);
}

/** Parts rows per insert: 10 columns each, far below either database's bound-parameter limit. */
const PARTS_PER_INSERT = 500;

/**
 * writeParsed for several messages: their parts in one delete and one insert rather than two
 * statements each (statements, not rows, are what a small message's save costs).
 */
export async function writeParsedMany(trx: Transaction<Database>, items: { id: string; result: ParsedRows }[]): Promise<void> {
  const now = new Date().toISOString();
  // Parsing again (after a crash mid-parse) replaces what the earlier attempt left.
  await trx.deleteFrom('parts').where('message', 'in', items.map((i) => i.id)).execute();
  const parts = items.flatMap((i) => i.result.parts);
  for (let at = 0; at < parts.length; at += PARTS_PER_INSERT) {
    await trx.insertInto('parts').values(parts.slice(at, at + PARTS_PER_INSERT)).execute();
  }
  for (const { id, result } of items) {
    await trx
      .updateTable('messages')
      .set({
        headers: JSON.stringify(result.headers),
        addresses: JSON.stringify(result.addresses),
        subject: result.subject,
        from_addr: result.from,
        date: result.date,
        parsed_at: now,
        updated_at: now,
        parse_status: result.parseStatus,
        parse_error: result.parseError ?? null,
        defects: JSON.stringify(result.defects ?? []),
      })
      .where('id', '=', id)
      .execute();
  }
  // The search index, in the same transaction: a message is findable by text once it is parsed.
  const envelopes = await trx
    .selectFrom('messages')
    .select(['id', 'mail_from', 'rcpt_to'])
    .where('id', 'in', items.map((i) => i.id))
    .execute();
  const byId = new Map(envelopes.map((e) => [e.id, e]));
  const docs = items.flatMap(({ id, result }) => {
    const env = byId.get(id);
    if (!env) return [];
    return [searchDoc({ message: id, subject: result.subject, from: result.from, mailFrom: env.mail_from, rcptTo: JSON.parse(env.rcpt_to) as string[], addresses: result.addresses, body: result.bodyText ?? null })];
  });
  await searchIndexOf(trx).put(trx, docs);
}

/** Set a message's status (and error text). */
export async function setStatus(db: Q, id: string, status: MessageStatus, error: string | null = null): Promise<void> {
  await db
    .updateTable('messages')
    .set({ status, error, updated_at: new Date().toISOString() })
    .where('id', '=', id)
    .execute();
}

/**
 * Pin (or unpin) a message: retention (store/retention.ts) never removes a pinned one. Returns
 * the message as it is now, or undefined when there is no such message.
 */
export async function setPinned(db: Q, id: string, pinned: boolean): Promise<StoredMessage | undefined> {
  const now = new Date().toISOString();
  // Pinning again keeps the first pin's time: when it was pinned is what an operator looks for.
  await db
    .updateTable('messages')
    .set({ pinned_at: pinned ? sql<string>`coalesce(pinned_at, ${now})` : null, updated_at: now })
    .where('id', '=', id)
    .execute();
  return getMessage(db, id);
}
