import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { mailError } from '../../core/errors.js';
import type { StoredPart } from '../../core/message.js';
import { withTrace } from '../../mime/trace.js';
import { getParts } from '../../store/messages.js';
import { BYTES_CSP, cleanFilename, contentDisposition, HTML_CSP, safeMediaType } from '../content-headers.js';
import { defineRoute } from '../route.js';
import { AttachmentList, CidParams, MessageParams, PartParams, RawQuery } from '../schemas.js';
import type { ApiDeps } from '../deps.js';
import { MESSAGES, partOf, requireMessage } from './messages.js';

/**
 * The blob's bytes, or for HEAD an empty stream: fastify would otherwise read a 200 MiB blob to
 * the end only to discard it, and an empty stream (unlike no body) keeps our Content-Length.
 */
async function blobBody(deps: ApiDeps, request: FastifyRequest, sha256: string): Promise<Readable> {
  return request.method === 'HEAD' ? Readable.from([]) : deps.blobs.open(sha256);
}

/** Stream a blob with a length, a media type and headers that keep a browser from running it. */
async function sendBlob(
  deps: ApiDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  part: { sha256: string; size: number },
  headers: { type: string; csp?: string; disposition?: string },
): Promise<FastifyReply> {
  const body = await blobBody(deps, request, part.sha256);
  reply
    .header('content-type', headers.type)
    .header('content-length', String(part.size))
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', headers.csp ?? BYTES_CSP);
  if (headers.disposition) reply.header('content-disposition', headers.disposition);
  return reply.send(body);
}

const ATTACHABLE = new Set<StoredPart['kind']>(['attachment', 'inline']);

/** A Content-ID without its angle brackets, as a cid: URL names it (RFC 2392). */
function bareCid(cid: string): string {
  return cid.trim().replace(/^<(.*)>$/, '$1');
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
      summary: 'The message exactly as received (message/rfc822)',
      description:
        'By default our `Received:` trace header comes first (in the message\'s own line ending), then the bytes received, unchanged. ' +
        'With `?trace=0` the body is exactly the bytes received: its sha256 is the message `sha256`.',
      tags: ['content'],
      params: MessageParams,
      query: RawQuery,
      responses: {
        200: {
          description: 'the raw message',
          contentType: 'message/rfc822',
          headers: { 'x-postroom-sha256': 'sha256 of the bytes received (without the trace header)' },
        },
      },
    },
    async ({ params, query, request, reply }) => {
      const m = await requireMessage(deps, params.id);
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

  for (const kind of ['text', 'html'] as const) {
    defineRoute(
      app,
      {
        method: 'GET',
        url: `${MESSAGES}/:id/${kind}`,
        summary: kind === 'text' ? 'The plain-text body' : 'The HTML body, sandboxed: no scripts, no remote loads',
        ...(kind === 'html'
          ? {
              description:
                `Served with \`Content-Security-Policy: ${HTML_CSP}\` and \`X-Content-Type-Options: nosniff\`, ` +
                'so opening it in a browser runs no script and fetches nothing (no tracking pixels).',
            }
          : {}),
        tags: ['content'],
        params: MessageParams,
        responses: { 200: { description: `the ${kind} body`, contentType: kind === 'text' ? 'text/plain' : 'text/html' } },
      },
      async ({ params, request, reply }) => {
        const m = await requireMessage(deps, params.id);
        const part = (await getParts(deps.db.kysely, m.id)).find((p) => p.kind === kind);
        if (!part) throw mailError('NOT_FOUND', `Message ${m.id} has no ${kind} body`);
        return sendBlob(deps, request, reply, part, {
          type: safeMediaType(part.contentType),
          csp: kind === 'html' ? HTML_CSP : BYTES_CSP,
        });
      },
    );
  }

  defineRoute(
    app,
    {
      method: 'GET',
      url: `${MESSAGES}/:id/attachments`,
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
      summary: 'The bytes of one part, as a download under its sanitised name',
      description: "`Content-Disposition: attachment` with an ASCII `filename` and RFC 8187 `filename*=UTF-8''…` for other names.",
      tags: ['content'],
      params: PartParams,
      responses: { 200: { description: 'the part', contentType: 'application/octet-stream' } },
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
      url: `${MESSAGES}/:id/inlines/:cid`,
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
