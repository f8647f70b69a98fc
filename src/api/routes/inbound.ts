import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PassThrough, type Readable } from 'node:stream';
import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import type { Envelope } from '../../core/message.js';
import type { Accept } from '../../intake/accept.js';
import type { RecipientCheck } from '../../core/message.js';
import { defineRoute } from '../route.js';
import type { ApiDeps } from '../deps.js';

export const INBOUND = '/api/v1/inbound';

// One address per parameter; RFC 5321 §4.5.3.1.3: a path is at most 256 octets.
const Address = z.string().min(1).max(256);

export const InboundQuery = z.strictObject({
  recipient: z
    .union([Address, z.array(Address).max(100)])
    .optional()
    .describe('envelope recipient; repeat for several (each is checked as at SMTP RCPT time)'),
  list: z.string().min(1).max(256).optional().describe('a group, by address or numeric id (postroom deliver -l)'),
  sender: z.string().max(256).default('').describe("envelope sender; '' (the default) for the null sender <>"),
  from: Address.optional().describe(
    "with the null sender: the message's From: address, which a group checks membership on before the upload (postroom deliver sends it; the delivery checks the header itself again)",
  ),
  time: z.enum(['server', 'message']).default('server').describe("post time: arrival ('server') or the Date: header ('message')"),
});

const Accepted = z.object({
  id: z.string().describe('the kept message'),
  duplicate: z.boolean().describe('this exact message was already kept for these recipients; nothing new was stored'),
});

/**
 * POST /api/v1/inbound: a raw message (message/rfc822) streamed straight into the intake door,
 * never buffered: the body is handed to intake as the request stream, and fastify's body limit
 * does not apply (intake counts the bytes against http.maxUploadSize and answers 413 5.3.4).
 * The recipients are checked first, as SMTP does at RCPT, so a refusal costs no upload.
 */
export async function inboundRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  // Hand the request stream on as it is (this scope only): no parser reads it into memory.
  app.addContentTypeParser('message/rfc822', (_request, payload, done) => done(null, payload));

  defineRoute(
    app,
    {
      method: 'POST',
      url: INBOUND,
      // Mail intake, not an operator's action: the kept message (with its client IP) is its own record.
      audit: false,
      summary: 'Keep a raw message (the HTTP door for MTAs and `postroom deliver URL`)',
      description:
        'The body is the message exactly as it should be kept (message/rfc822), streamed. Recipients are checked as at SMTP RCPT ' +
        'time first (5.1.1 unknown, 5.7.1 not allowed: the whole request is refused if any is). 202 only once the bytes are ' +
        'fsynced and the row committed. Errors are problem JSON whose enhancedStatus is the RFC 3463 code an MTA would bounce or defer with.',
      tags: ['intake'],
      query: InboundQuery,
      body: { contentType: 'message/rfc822', description: 'the raw message, byte for byte' },
      responses: {
        202: { description: 'kept (fsynced and committed)', schema: Accepted },
        413: { description: 'larger than http.maxUploadSize (5.3.4)' },
        422: { description: 'a recipient is unknown (5.1.1) or missing (5.1.3), or the message is empty (5.3.0)' },
      },
    },
    async (input) => {
      try {
        return await inbound(input.query, input.body as Readable | undefined, input.request, input.reply);
      } catch (err) {
        // Part of the body was never read: close the connection after the answer, or the socket
        // stays paused on the client's unread bytes and its end is never seen (server.close hangs).
        // First read and discard what the client is still sending, for a bounded while (nginx's
        // lingering close): a client still writing when we close gets EPIPE and never sees the
        // answer, so `postroom deliver` would defer (4.4.4) what should bounce (5.3.4).
        const stream = input.body as Readable | undefined;
        if (stream && typeof stream.pipe === 'function' && !stream.readableEnded) {
          input.reply.header('connection', 'close');
          await drainBriefly(stream, LINGER_BYTES, LINGER_MS);
        }
        throw err;
      }
    },
  );

  async function inbound(query: z.output<typeof InboundQuery>, stream: Readable | undefined, request: FastifyRequest, reply: FastifyReply) {
    const intake = deps.intake;
    if (!intake) throw mailError('CONFIG', 'This server has no intake');
    const max = deps.config.maxUploadSize;
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > max) throw mailError('TOO_LARGE', `Message size exceeds the maximum of ${max} bytes`);
    if (!stream || typeof stream.pipe !== 'function') throw mailError('UNSUPPORTED_MEDIA_TYPE', 'send the message as message/rfc822');

    const rcptTo = typeof query.recipient === 'string' ? [query.recipient] : [...(query.recipient ?? [])];
    if (query.list) rcptTo.push(query.list.includes('@') || !intake.resolveList ? query.list : await intake.resolveList(query.list));
    if (!rcptTo.length) throw mailError('NO_RECIPIENT', 'No recipient: give ?recipient= or ?list=');
    const accepted: string[] = [];
    let requireMessageId = intake.requireMessageId;
    for (const rcpt of rcptTo) {
      const headerFrom = query.sender ? undefined : query.from;
      const verdict = await intake.recipientCheck(rcpt, { ingress: 'http', mailFrom: query.sender, headerFrom, accepted, clientIp: request.ip, trusted: true });
      requireMessageId ||= !!verdict?.requireMessageId;
      accepted.push(rcpt);
    }
    const env: Envelope = { mailFrom: query.sender, rcptTo, ingress: 'http', clientIp: request.ip, receivedAt: new Date(), timeSource: query.time };
    // Through a PassThrough: when intake stops reading (too large), it ends its iteration, which
    // destroys what it iterates; that must not be the request, whose socket carries our answer.
    const body = new PassThrough({ highWaterMark: 64 * 1024 });
    // pipe() passes on the request's end but not its abort: a client that goes away mid-body
    // (killed, its connection reset) left intake waiting on `body` for ever, its staged file
    // open until garbage collection closed it (Node's DEP0137 warning).
    const gone = () => {
      if (!stream.readableEnded) body.destroy(new Error('the client closed the connection before the end of the message'));
    };
    stream.once('close', gone);
    stream.pipe(body);
    try {
      const stored = await intake.accept(env, body, { maxSize: max, requireMessageId, trace: intake.trace });
      return reply.code(202).send({ id: stored.id, duplicate: !!stored.duplicate });
    } finally {
      stream.off('close', gone);
      stream.unpipe(body);
    }
  }
}

// What a refused upload may still send before we answer and close (see the route's catch).
const LINGER_BYTES = 64 * 1024 * 1024;
const LINGER_MS = 10_000;

/** Read and discard the rest of `stream` until it ends, or `maxBytes` / `maxMs` pass. */
function drainBriefly(stream: Readable, maxBytes: number, maxMs: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const done = () => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', done);
      stream.off('error', done);
      stream.off('close', done);
      stream.pause();
      resolve();
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > maxBytes) done();
    };
    const timer = setTimeout(done, maxMs);
    stream.on('data', onData);
    stream.once('end', done);
    stream.once('error', done);
    stream.once('close', done);
    stream.resume();
  });
}
