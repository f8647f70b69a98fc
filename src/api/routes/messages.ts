import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import { parseSearch } from '../../core/message-search.js';
import type { StoredMessage, StoredPart } from '../../core/message.js';
import { parseReportFields, REPORT_TYPES } from '../../mime/delivery-status.js';
import { getMessage, getParsedDetail, getParts, listMessagePage, setPinned } from '../../store/messages.js';
import { defineRoute } from '../route.js';
import { MessageDetail, MessageList, MessageListQuery, MessageParams, type MessageSummary, type Part } from '../schemas.js';
import type { ApiDeps } from '../deps.js';

export const MESSAGES = '/api/v1/messages';

/** Rows a search (`?q=`) reads per request at most; see the list route. */
export const SEARCH_WINDOW = 10_000;

/**
 * The cursor is opaque to clients so that its shape can change; today it is the last id seen
 * (ids sort by arrival), which makes paging stable while new mail arrives (keyset, not offset).
 */
export function encodeCursor(lastId: string): string {
  return Buffer.from(JSON.stringify({ v: 1, before: lastId })).toString('base64url');
}

/** The id a cursor points below; INVALID_REQUEST if it is not one of ours. */
export function decodeCursor(cursor: string): string {
  try {
    const c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { v?: number; before?: unknown };
    if (c.v === 1 && typeof c.before === 'string' && /^[0-9a-z_-]{1,64}$/i.test(c.before)) return c.before;
  } catch {
    // fall through: a cursor that is not base64url JSON is as invalid as one with the wrong shape
  }
  throw mailError('INVALID_REQUEST', 'query.cursor: not a cursor returned by this API');
}

/** A message in list form. */
export function summaryOf(m: StoredMessage): z.output<typeof MessageSummary> {
  return {
    id: m.id,
    ingress: m.ingress,
    mailFrom: m.mailFrom,
    rcptTo: m.rcptTo,
    receivedAt: m.receivedAt,
    messageId: m.messageId,
    subject: m.subject,
    from: m.from,
    date: m.date,
    size: m.size,
    sha256: m.rawSha256,
    status: m.status,
    parseStatus: m.parseStatus,
    defects: m.defects ?? [],
  };
}

/** Where a part's bytes are served. */
export function partUrl(messageId: string, p: StoredPart): string {
  const base = `${MESSAGES}/${messageId}`;
  if (p.kind === 'text') return `${base}/text`;
  if (p.kind === 'html') return `${base}/html`;
  return `${base}/attachments/${p.id}`;
}

/** A part as the API shows it. */
export function partOf(messageId: string, p: StoredPart): z.output<typeof Part> {
  return {
    id: p.id,
    idx: p.idx,
    kind: p.kind,
    filename: p.filename,
    originalFilename: p.originalFilename,
    contentType: p.contentType,
    contentId: p.contentId,
    size: p.size,
    sha256: p.sha256,
    url: partUrl(messageId, p),
  };
}

/** A kept message, or NOT_FOUND. */
export async function requireMessage(deps: ApiDeps, id: string): Promise<StoredMessage> {
  const m = await getMessage(deps.db.kysely, id);
  if (!m) throw mailError('NOT_FOUND', `No message ${id}`);
  return m;
}

/** GET /api/v1/messages and GET /api/v1/messages/:id. */
export async function messageRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  defineRoute(
    app,
    {
      method: 'GET',
      url: MESSAGES,
      summary: 'List kept messages, newest first',
      description:
        'Filters combine with AND. Pages are keyset-paginated: pass `nextCursor` back as `cursor` ' +
        'with the same filters; mail arriving meanwhile does not shift pages. Text filters (`q`, `from`, `subject`, `rcpt`) are ' +
        'answered from the search index when a term has three characters or more and matches few messages; otherwise ' +
        'a request reads at most 10,000 messages, so its page may hold fewer than `limit` items (even none) while `nextCursor` ' +
        'is set: follow it to search older mail.',
      tags: ['messages'],
      query: MessageListQuery,
      responses: { 200: { description: 'one page of messages', schema: MessageList } },
    },
    async ({ query }) => {
      const { cursor, limit, q, ...filters } = query;
      const before = cursor ? decodeCursor(cursor) : undefined;
      const search = q?.trim() ? parseSearch(q) : undefined;
      // Text terms the search index can name (three characters or more, matching few messages)
      // are answered from it, however old the matches. Others are tested row by row, newest
      // first, and then at most SEARCH_WINDOW rows are read per request: a rare short term over
      // a million messages would otherwise read them all before answering (seconds). The page
      // may then be short, and its nextCursor continues below the window.
      // One more than asked tells whether another page exists without a count query.
      const filter = { ...filters, search, before, window: SEARCH_WINDOW, limit: limit + 1 };
      // On SQLite the query runs on the read thread (the loop keeps serving SMTP meanwhile).
      const { rows, floor } = (await deps.db.reader?.listMessagePage(filter)) ?? (await listMessagePage(deps.db.kysely, filter));
      const page = rows.slice(0, limit);
      const nextCursor = rows.length > limit ? encodeCursor(page[page.length - 1].id) : floor ? encodeCursor(floor) : null;
      return { items: page.map(summaryOf), nextCursor };
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: `${MESSAGES}/:id`,
      summary: 'One message: envelope, headers in order, addresses, status and parts',
      tags: ['messages'],
      params: MessageParams,
      responses: { 200: { description: 'the message', schema: MessageDetail } },
    },
    async ({ params }) => {
      const m = await requireMessage(deps, params.id);
      const [detail, parts] = await Promise.all([getParsedDetail(deps.db.kysely, m.id), getParts(deps.db.kysely, m.id)]);
      const body: z.output<typeof MessageDetail> = {
        id: m.id,
        ingress: m.ingress,
        envelope: {
          mailFrom: m.mailFrom,
          rcptTo: m.rcptTo,
          clientIp: m.clientIp,
          helo: m.helo,
          authUser: m.authUser,
          receivedAt: m.receivedAt,
        },
        messageId: m.messageId,
        subject: m.subject,
        from: m.from,
        date: m.date,
        size: m.size,
        sha256: m.rawSha256,
        status: m.status,
        error: m.error,
        parseStatus: m.parseStatus,
        parseError: m.parseError,
        defects: m.defects ?? [],
        parsedAt: detail?.parsedAt ?? null,
        trace: m.trace ? m.trace.trimEnd() : null,
        headers: detail?.headers ?? [],
        addresses: detail?.addresses ?? null,
        parts: parts.map((p) => partOf(m.id, p)),
        reports: await reportsOf(deps, parts),
        duplicateOf: m.duplicateOf ?? null,
        pinnedAt: m.pinnedAt ?? null,
        auth: m.auth ?? null,
      };
      return body;
    },
  );

  const Pinned = z.object({ id: z.string(), pinnedAt: z.string().nullable().describe('when it was pinned; null: not pinned') });
  for (const [method, pinned] of [['POST', true], ['DELETE', false]] as const) {
    defineRoute(
      app,
      {
        method,
        url: `${MESSAGES}/:id/pin`,
        summary: pinned ? 'Pin a message: retention never removes it' : 'Unpin a message: retention may remove it again once its limits let it go',
        tags: ['messages'],
        role: 'operator',
        audit: pinned ? 'message.pin' : 'message.unpin',
        params: MessageParams,
        responses: { 200: { description: 'the message\'s pin', schema: Pinned } },
      },
      async ({ params }) => {
        const m = await setPinned(deps.db.kysely, params.id, pinned);
        if (!m) throw mailError('NOT_FOUND', `No message ${params.id}`);
        return { id: m.id, pinnedAt: m.pinnedAt ?? null };
      },
    );
  }
}

/** The message's delivery-status and feedback-report parts, read as fields (a few KiB each). */
async function reportsOf(deps: ApiDeps, parts: StoredPart[]): Promise<z.output<typeof MessageDetail>['reports']> {
  const out: z.output<typeof MessageDetail>['reports'] = [];
  for (const p of parts) {
    const type = p.contentType.split(';')[0].trim().toLowerCase();
    if (!REPORT_TYPES.has(type)) continue;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of await deps.blobs.open(p.sha256)) {
      chunks.push(c as Buffer);
      size += (c as Buffer).length;
      if (size >= REPORT_READ_LIMIT) break;
    }
    out.push({ part: p.idx, contentType: type, ...parseReportFields(Buffer.concat(chunks)) });
  }
  return out;
}

const REPORT_READ_LIMIT = 256 * 1024;
