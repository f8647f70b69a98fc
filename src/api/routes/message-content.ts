import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { mailError } from '../../core/errors.js';
import type { StoredPart } from '../../core/message.js';
import { withTrace } from '../../mime/trace.js';
import { getParts } from '../../store/messages.js';
import { BYTES_CSP, cleanFilename, contentDisposition, HTML_CSP, HTML_CSP_REMOTE, safeMediaType } from '../content-headers.js';
import { requestedRange, sendPartial } from '../range.js';
import { defineRoute } from '../route.js';
import { AttachmentList, CidParams, HtmlQuery, MessageParams, PartParams, RawQuery } from '../schemas.js';
import type { ApiDeps } from '../deps.js';
import { MESSAGES, partOf, requireMessage } from './messages.js';
import { REST_MODEL } from './rest-model.js';

const SEED = `${REST_MODEL}/Messages`;

/**
 * The blob's bytes, or for HEAD an empty stream: fastify would otherwise read a 200 MiB blob to
 * the end only to discard it, and an empty stream (unlike no body) keeps our Content-Length.
 */
async function blobBody(deps: ApiDeps, request: FastifyRequest, sha256: string): Promise<Readable> {
  return request.method === 'HEAD' ? Readable.from([]) : deps.blobs.open(sha256);
}

/**
 * Stream a blob with a length, a media type and headers that keep a browser from running it.
 * A Range asks the blob store for just those bytes (a resumed download of a large attachment).
 */
async function sendBlob(
  deps: ApiDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  part: { sha256: string; size: number },
  headers: { type: string; csp?: string; disposition?: string },
): Promise<FastifyReply> {
  const range = requestedRange(request, reply, part.size);
  const body = range ? await deps.blobs.open(part.sha256, range) : await blobBody(deps, request, part.sha256);
  reply
    .header('accept-ranges', 'bytes')
    .header('content-type', headers.type)
    .header('content-length', String(part.size))
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', headers.csp ?? BYTES_CSP);
  if (headers.disposition) reply.header('content-disposition', headers.disposition);
  if (range) sendPartial(reply, range, part.size);
  return reply.send(body);
}

const ATTACHABLE = new Set<StoredPart['kind']>(['attachment', 'inline']);

/** A Content-ID without its angle brackets, as a cid: URL names it (RFC 2392). */
function bareCid(cid: string): string {
  return cid.trim().replace(/^<(.*)>$/, '$1');
}

// HTML larger than this is served as it is (cid: images then do not show): inlining reads it whole.
const MAX_INLINED_HTML = 4 * 1024 * 1024;
// An inline image larger than this stays a cid: URL: a data: URL that size would only slow the frame.
const MAX_INLINED_PART = 2 * 1024 * 1024;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * cid: URLs (RFC 2392) of the message's own image parts, replaced by data: URLs, so the HTML
 * shows its inline images under a policy that loads nothing from anywhere (img-src data:).
 * Only image types: a data: URL of another type is no image, and text/html in one would be a page.
 */
async function inlineCids(deps: ApiDeps, html: Buffer, parts: StoredPart[]): Promise<Buffer> {
  const byCid = new Map(parts.filter((p) => p.contentId && p.size <= MAX_INLINED_PART).map((p) => [bareCid(p.contentId!).toLowerCase(), p]));
  const text = html.toString('latin1');
  const wanted = new Set<string>();
  for (const m of text.matchAll(/cid:([^"'\s)>]+)/gi)) wanted.add(m[1]);
  const dataUrls = new Map<string, string>();
  for (const cid of wanted) {
    let name = cid;
    try {
      name = decodeURIComponent(cid);
    } catch {
      // a malformed escape: match it as written
    }
    const p = byCid.get(name.toLowerCase());
    const type = p ? safeMediaType(p.contentType).split(';')[0] : '';
    if (!p || !/^image\/[a-z0-9.+-]+$/.test(type)) continue;
    dataUrls.set(cid, `data:${type};base64,${(await readAll(await deps.blobs.open(p.sha256))).toString('base64')}`);
  }
  // latin1 both ways keeps every byte of the HTML as it was, whatever its charset.
  return Buffer.from(text.replace(/cid:([^"'\s)>]+)/gi, (all, cid: string) => dataUrls.get(cid) ?? all), 'latin1');
}

function fallbackName(p: StoredPart): string {
  return `part-${p.idx}`;
}

/** The bytes of a message: /raw, /text, /html, /attachments, /inlines. */
export async function messageContentRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  defineRoute(
    app,
    {
      method: 'GET',
      url: `${MESSAGES}/:id/raw`,
      aliases: [`${SEED}/:id/rawMessage`],
      summary: 'The message exactly as received (message/rfc822)',
      description:
        'By default our `Received:` trace header comes first (in the message\'s own line ending), then the bytes received, unchanged. ' +
        'With `?trace=0` the body is exactly the bytes received: its sha256 is the message `sha256`, and a `Range: bytes=FIRST-LAST` ' +
        'is answered 206 with just those bytes, read from the blob store (a resumed download of a large message).',
      tags: ['content'],
      params: MessageParams,
      query: RawQuery,
      responses: {
        200: {
          description: 'the raw message',
          contentType: 'message/rfc822',
          headers: { 'x-postroom-sha256': 'sha256 of the bytes received (without the trace header)' },
        },
        206: { description: 'the bytes a Range asked for (`?trace=0`, or a message kept without our trace header)', contentType: 'message/rfc822' },
      },
    },
    async ({ params, query, request, reply }) => {
      const m = await requireMessage(deps, params.id);
      if (!query.trace || !m.trace) {
        // The bytes received as they are: a Range is served from the blob store. (With our trace
        // header first, the whole message is sent: RFC 9110 §14.2 lets a server ignore Range.)
        reply.header('x-postroom-sha256', m.rawSha256);
        return sendBlob(deps, request, reply, { sha256: m.rawSha256, size: m.size }, { type: 'message/rfc822', disposition: contentDisposition('attachment', `${m.id}.eml`) });
      }
      // The trace header's line ending follows the message's, so its length is known once the
      // first bytes are read; HEAD reads them too, then sends nothing.
      const raw = await withTrace(query.trace ? m.trace : null, await deps.blobs.open(m.rawSha256));
      const body = request.method === 'HEAD' ? (raw.stream.destroy(), Readable.from([])) : raw.stream;
      reply
        .header('content-type', 'message/rfc822')
        .header('content-length', String(raw.length + m.size))
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', BYTES_CSP)
        .header('x-postroom-sha256', m.rawSha256)
        .header('content-disposition', contentDisposition('attachment', `${m.id}.eml`));
      return reply.send(body);
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: `${MESSAGES}/:id/text`,
      summary: 'The plain-text body',
      tags: ['content'],
      params: MessageParams,
      responses: { 200: { description: 'the text body', contentType: 'text/plain' } },
    },
    async ({ params, request, reply }) => {
      const m = await requireMessage(deps, params.id);
      const part = (await getParts(deps.db.kysely, m.id)).find((p) => p.kind === 'text');
      if (!part) throw mailError('NOT_FOUND', `Message ${m.id} has no text body`);
      return sendBlob(deps, request, reply, part, { type: safeMediaType(part.contentType), csp: BYTES_CSP });
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: `${MESSAGES}/:id/html`,
      aliases: [`${SEED}/:id/html`],
      summary: 'The HTML body, sandboxed: no scripts, no remote loads',
      description:
        `Served with \`Content-Security-Policy: ${HTML_CSP}\` and \`X-Content-Type-Options: nosniff\`, ` +
        'so opening it in a browser runs no script and fetches nothing (no tracking pixels). ' +
        '`?inline=1` puts the message\'s own inline images (cid: URLs) into the HTML as data: URLs, which the policy allows; ' +
        '`?remote=1` lets images, styles and fonts load from the network too (the operator asked to "load remote content"); script never runs.',
      tags: ['content'],
      params: MessageParams,
      query: HtmlQuery,
      responses: { 200: { description: 'the HTML body', contentType: 'text/html' } },
    },
    async ({ params, query, request, reply }) => {
      const m = await requireMessage(deps, params.id);
      const parts = await getParts(deps.db.kysely, m.id);
      const part = parts.find((p) => p.kind === 'html');
      if (!part) throw mailError('NOT_FOUND', `Message ${m.id} has no html body`);
      const csp = query.remote ? HTML_CSP_REMOTE : HTML_CSP;
      const type = safeMediaType(part.contentType);
      if (!query.inline || part.size > MAX_INLINED_HTML || !parts.some((p) => p.contentId)) return sendBlob(deps, request, reply, part, { type, csp });
      const body = await inlineCids(deps, await readAll(await deps.blobs.open(part.sha256)), parts);
      reply.header('content-type', type).header('x-content-type-options', 'nosniff').header('content-security-policy', csp);
      return reply.send(request.method === 'HEAD' ? '' : body);
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: `${MESSAGES}/:id/attachments`,
      aliases: [`${SEED}/:id/attachments`],
      summary: 'Attachments and inline parts of a message',
      tags: ['content'],
      params: MessageParams,
      responses: { 200: { description: 'the attachments', schema: AttachmentList } },
    },
    async ({ params }) => {
      const m = await requireMessage(deps, params.id);
      const parts = await getParts(deps.db.kysely, m.id);
      return { items: parts.filter((p) => ATTACHABLE.has(p.kind)).map((p) => partOf(m.id, p)) };
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: `${MESSAGES}/:id/attachments/:part`,
      aliases: [`${SEED}/:id/attachments/:part`],
      summary: 'The bytes of one part, as a download under its sanitised name',
      description: "`Content-Disposition: attachment` with an ASCII `filename` and RFC 8187 `filename*=UTF-8''…` for other names.",
      tags: ['content'],
      params: PartParams,
      responses: {
        200: { description: 'the part', contentType: 'application/octet-stream' },
        206: { description: 'the bytes a Range asked for', contentType: 'application/octet-stream' },
      },
    },
    async ({ params, request, reply }) => {
      const m = await requireMessage(deps, params.id);
      const parts = await getParts(deps.db.kysely, m.id);
      const byIndex = /^\d+$/.test(params.part) ? Number(params.part) : undefined;
      const part = parts.find((p) => p.id === params.part || p.idx === byIndex);
      if (!part) throw mailError('NOT_FOUND', `Message ${m.id} has no part ${params.part}`);
      return sendBlob(deps, request, reply, part, {
        type: safeMediaType(part.contentType),
        disposition: contentDisposition('attachment', cleanFilename(part.filename, fallbackName(part))),
      });
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: `${MESSAGES}/:id/inlines`,
      aliases: [`${SEED}/:id/inlines`],
      summary: 'Inline parts of a message (those the HTML names by cid:), each with its Content-ID',
      tags: ['content'],
      params: MessageParams,
      responses: { 200: { description: 'the inline parts', schema: AttachmentList } },
    },
    async ({ params }) => {
      const m = await requireMessage(deps, params.id);
      const parts = await getParts(deps.db.kysely, m.id);
      return { items: parts.filter((p) => p.kind === 'inline' || (p.kind === 'attachment' && p.contentId)).map((p) => partOf(m.id, p)) };
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: `${MESSAGES}/:id/inlines/:cid`,
      aliases: [`${SEED}/:id/inlines/:cid`],
      summary: 'An inline part by its Content-ID (what cid: URLs in the HTML name)',
      tags: ['content'],
      params: CidParams,
      responses: { 200: { description: 'the inline part', contentType: 'application/octet-stream' } },
    },
    async ({ params, request, reply }) => {
      const m = await requireMessage(deps, params.id);
      const want = bareCid(params.cid);
      const part = (await getParts(deps.db.kysely, m.id)).find((p) => p.contentId && bareCid(p.contentId) === want);
      if (!part) throw mailError('NOT_FOUND', `Message ${m.id} has no part with Content-ID <${want}>`);
      return sendBlob(deps, request, reply, part, {
        type: safeMediaType(part.contentType),
        disposition: contentDisposition('inline', cleanFilename(part.filename, fallbackName(part))),
      });
    },
  );
}
