import { sql, type Kysely, type SqlBool, type Transaction } from 'kysely';
import { createHash } from 'node:crypto';
import type { Envelope, HeaderLine, MessageStatus, ParseStatus, StoredMessage, StoredPart } from '../core/message.js';
import type { MimeDefect } from '../core/mime-defects.js';
import type { SearchTerm } from '../core/message-search.js';
import { relaxedTransaction } from './db.js';
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
    parseStatus: r.parse_status as ParseStatus,
    parseError: r.parse_error,
    defects: r.defects ? (JSON.parse(r.defects) as MimeDefect[]) : [],
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

export interface MessageFilter {
  since?: string;
  until?: string;
  from?: string;
  rcpt?: string;
  subject?: string;
  /** Routing and delivery status; `raw` is taken as `parse: 'raw'` (whatever the delivery state). */
  status?: string;
  /** How parsing went: pending, parsed, raw. */
  parse?: string;
  ingress?: string;
  /** Fetched from (or sent through) this mail account. */
  account?: string;
  /** Fetched from this mail-account folder. */
  folder?: string;
  /** Parsed search terms (core/message-search.ts), all of which must hold. */
  search?: readonly SearchTerm[];
  /** Return messages with id below this (newest first). */
  before?: string;
  /** Return messages with id above this (what arrived since; the live list). */
  after?: string;
  /** Return messages with id at or above this (the floor of a bounded search window). */
  atLeast?: string;
  limit: number;
}

/** Messages newest first, filtered; `before` is the cursor (an id). */
export async function listMessages(db: Q, f: MessageFilter): Promise<StoredMessage[]> {
  let q = db.selectFrom('messages').selectAll().orderBy('id', 'desc').limit(f.limit);
  // Timestamps are stored as toISOString() text and compared as text: '…T00:00:00Z' sorts after
  // '…T00:00:00.000Z', so a bound must be written the same way before it is compared.
  if (f.since) q = q.where('received_at', '>=', isoText(f.since));
  if (f.until) q = q.where('received_at', '<', isoText(f.until));
  // `raw` was once a status that delivery overwrote; it now names the parse outcome, which lasts.
  if (f.status === 'raw') q = q.where('parse_status', '=', 'raw');
  else if (f.status) q = q.where('status', '=', f.status);
  if (f.parse) q = q.where('parse_status', '=', f.parse);
  if (f.ingress) q = q.where('ingress', '=', f.ingress);
  if (f.before) q = q.where('id', '<', f.before);
  if (f.after) q = q.where('id', '>', f.after);
  if (f.atLeast) q = q.where('id', '>=', f.atLeast);
  if (f.account || f.folder) {
    q = q.where('id', 'in', (eb) => {
      let links = eb.selectFrom('mail_links').select('mail_links.message');
      if (f.account) links = links.where('mail_links.account', '=', f.account);
      if (f.folder) links = links.where('mail_links.folder', '=', f.folder);
      return links;
    });
  }
  // Substring filters: lower() + like works the same on SQLite and PostgreSQL (PostgreSQL's LIKE
  // is case-sensitive). SQLite has no default LIKE escape character, so name it for both.
  const contains = has;
  if (f.subject) q = q.where(contains('subject', f.subject));
  if (f.rcpt) q = q.where(contains('rcpt_to', f.rcpt));
  if (f.from) q = q.where((eb) => eb.or([contains('from_addr', f.from!), contains('mail_from', f.from!)]));
  for (const t of f.search ?? []) {
    const cond = searchCondition(t);
    q = q.where(t.negate ? sql<SqlBool>`not (${cond})` : cond);
  }
  return (await q.execute()).map(toStoredMessage);
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

/** A LIKE pattern for a case-insensitive substring, with the escape character named by the caller. */
function likePattern(s: string): string {
  return `%${s.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

type TextColumn = 'subject' | 'rcpt_to' | 'from_addr' | 'mail_from' | 'message_id' | 'addresses';

/** NULL columns count as '' so that a negated term (`-subject:x`) keeps messages without a subject. */
function has(col: TextColumn, s: string) {
  return sql<SqlBool>`lower(coalesce(${sql.ref(col)}, '')) like ${likePattern(s)} escape '\\'`;
}

function anyOf(cols: TextColumn[], s: string) {
  return sql<SqlBool>`(${sql.join(cols.map((c) => has(c, s)), sql` or `)})`;
}

/** One search term as a condition; messages newest first still walk the id index, so a page stops early. */
function searchCondition(t: SearchTerm) {
  switch (t.field) {
    case 'from':
      return anyOf(['from_addr', 'mail_from'], t.value);
    // The parsed To/Cc/Reply-To address lists (stored as JSON with From; the value is matched in the list text).
    case 'to':
      return sql<SqlBool>`(${has('addresses', t.value)} and not ${has('from_addr', t.value)})`;
    case 'rcpt':
      return has('rcpt_to', t.value);
    case 'subject':
      return has('subject', t.value);
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
    case 'text':
      return anyOf(['subject', 'from_addr', 'mail_from', 'rcpt_to'], t.value);
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
}

/** Set a message's status (and error text). */
export async function setStatus(db: Q, id: string, status: MessageStatus, error: string | null = null): Promise<void> {
  await db
    .updateTable('messages')
    .set({ status, error, updated_at: new Date().toISOString() })
    .where('id', '=', id)
    .execute();
}
