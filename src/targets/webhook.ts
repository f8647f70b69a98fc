import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { duration, size } from '../config/units.js';
import type { DeliveryContext, ParsedMessage, Receipt, Target } from '../core/delivery.js';
import { mailError, MailError } from '../core/errors.js';
import { httpStatusError } from '../net/remote-answer.js';
import { guardedLookup, isPrivateAddress, privateAddressError } from '../net/address-guard.js';
import { compileTemplate, type Template } from '../routing/template.js';
import { multipartBody, webhookDocument } from './webhook-payload.js';
import { payloadTemplateSchema, payloadVars, renderPayload } from './webhook-template.js';

export const webhookParams = z
  .strictObject({
    url: z
      .string()
      .url()
      .refine((u) => /^https?:$/.test(new URL(u).protocol), 'only http:// and https:// URLs')
      .describe('http:// or https:// URL the message is POSTed to'),
    format: z
      .enum(['json', 'multipart', 'raw'])
      .default('json')
      .describe('json document, multipart/form-data (payload + files), or the raw message/rfc822'),
    secret: z
      .string()
      .regex(/^whsec_[A-Za-z0-9+/]+=*$/, 'a Standard Webhooks secret: whsec_ followed by base64')
      .optional()
      .describe('signs each request (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature)'),
    token: z.string().min(1).optional().describe('sent as Authorization: Bearer <token>, for endpoints that check a token instead of a signature'),
    timeout: duration().default(30_000).describe('time one request may take; a longer one is aborted and retried'),
    attachments: z
      .enum(['auto', 'inline', 'url', 'none'])
      .default('auto')
      .describe('auto/inline: attachment bytes inside the request up to inlineLimit, API URLs (which need the API token) beyond; url: URLs only; none: left out'),
    inlineLimit: size().default(10 * 1024 * 1024).describe('attachment bytes carried inside one request, in total'),
    allowPrivate: z
      .boolean()
      .default(false)
      .describe('allow hosts on loopback, link-local or private addresses (refused by default: SSRF)'),
    payload: payloadTemplateSchema.optional(),
  })
  .superRefine((p, ctx) => {
    // The template is the whole body: a second format beside it would be ignored in silence.
    if (p.payload && p.format !== 'json') ctx.addIssue({ code: 'custom', message: `payload makes the body; leave format out (it is ${p.format})`, path: ['format'] });
  })
  .describe(
    'POST the message to an HTTP endpoint. 2xx: done; 408, 425, 429 and 5xx: retried (Retry-After honoured); 410: failed and this target paused; other 4xx: failed; redirects are not followed',
  );

export type WebhookParams = z.output<typeof webhookParams>;

/**
 * Standard Webhooks signature: base64 HMAC-SHA256 over `id.timestamp.body` with the secret's
 * base64-decoded bytes as key (standardwebhooks.com, "Signature scheme"). Streams the body.
 */
export async function signStandardWebhook(secret: string, id: string, timestamp: number, body: Buffer | AsyncIterable<Buffer>): Promise<string> {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const h = createHmac('sha256', key).update(`${id}.${timestamp}.`);
  if (Buffer.isBuffer(body)) h.update(body);
  else for await (const c of body) h.update(c);
  return `v1,${h.digest('base64')}`;
}

/** Seconds from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 §10.2.3). */
export function parseRetryAfter(v: string | undefined, now = Date.now()): number | undefined {
  if (!v) return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

const TRANSIENT_NET = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ECONNABORTED|UND_ERR_SOCKET|ERR_STREAM_PREMATURE_CLOSE)$/;

/** A network-level failure as MailError: our own refusals pass through, the rest are transient. */
function networkError(err: unknown, ctx: DeliveryContext, timeout: AbortSignal, ms: number): MailError {
  if (err instanceof MailError) return err;
  const cause = (err as { cause?: unknown })?.cause;
  if (cause instanceof MailError) return cause;
  if (timeout.aborted && !ctx.signal.aborted) return mailError('TARGET_TIMEOUT', `no answer within ${ms} ms`);
  if (ctx.signal.aborted) return ctx.signal.reason instanceof MailError ? ctx.signal.reason : mailError('TIMEOUT', 'attempt aborted');
  const code = (err as NodeJS.ErrnoException)?.code ?? '';
  const text = `${code || 'error'}: ${(err as Error)?.message ?? String(err)}`;
  return mailError(TRANSIENT_NET.test(code) ? 'TARGET_CONNECT' : 'TARGET_TEMPFAIL', text, { cause: err });
}

/** The request body and its headers for one attempt; `stream()` may be called twice (sign, send). */
interface Body {
  contentType: string;
  length: number;
  stream(): Promise<AsyncIterable<Buffer>>;
  buffer?: Buffer;
}

/** Payload templates compile once per distinct source, not per message. */
const compiled = new Map<string, Template>();
const tpl = (s: string) => {
  let t = compiled.get(s);
  if (!t) compiled.set(s, (t = compileTemplate(s)));
  return t;
};

async function buildBody(msg: ParsedMessage, p: WebhookParams, ctx: DeliveryContext): Promise<Body> {
  if (p.payload) {
    const { body, contentType } = renderPayload(p.payload, { vars: await payloadVars(msg, ctx) }, tpl);
    return { contentType, length: body.length, buffer: body, stream: async () => Readable.from([body]) };
  }
  const o = { attachments: p.attachments, inlineLimit: p.inlineLimit };
  if (p.format === 'raw') {
    // The raw message can be large: stream it twice (once to sign, once to send) rather than hold it.
    return {
      contentType: 'message/rfc822',
      length: msg.message.size,
      stream: async () => (await msg.openRaw()) as AsyncIterable<Buffer>,
    };
  }
  const { body, contentType } =
    p.format === 'multipart'
      ? await multipartBody(msg, ctx, o)
      : { body: Buffer.from(JSON.stringify((await webhookDocument(msg, ctx, o)).doc)), contentType: 'application/json' };
  return { contentType, length: body.length, buffer: body, stream: async () => Readable.from([body]) };
}

/** Envelope as an ASCII-only JSON header value (HTTP header values must be visible ASCII). */
function asciiJson(v: unknown): string {
  return JSON.stringify(v).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** POST the message; resolves with status and the first bytes of the answer. Redirects are not followed. */
async function post(p: WebhookParams, headers: Record<string, string>, body: Body, signal: AbortSignal): Promise<{ status: number; retryAfter?: number; text: string }> {
  const url = new URL(p.url);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // Literal addresses skip the lookup hook in Node: check them here.
  if (net.isIP(host) && !p.allowPrivate && isPrivateAddress(host)) throw privateAddressError(host, host);
  const mod = url.protocol === 'https:' ? https : http;
  const src = await body.stream();
  return new Promise((resolve, reject) => {
    const req = mod.request(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': body.contentType, 'content-length': String(body.length) },
      // A fresh connection each time: a pooled socket opened for a route with allowPrivate must
      // never carry a request for a route without it.
      agent: false,
      lookup: guardedLookup(p.allowPrivate) as unknown as net.LookupFunction,
      signal,
    });
    req.on('socket', (socket) => {
      // Belt and braces: whatever path led here, the connected peer must be allowed.
      socket.once('connect', () => {
        const ip = socket.remoteAddress ?? '';
        if (!p.allowPrivate && isPrivateAddress(ip)) req.destroy(privateAddressError(host, ip));
      });
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < 1024) chunks.push(c);
        size += c.length;
        if (size > 64 * 1024) res.destroy(); // we only want the status; don't read a huge answer
      });
      const done = () =>
        resolve({
          status: res.statusCode ?? 0,
          retryAfter: parseRetryAfter(res.headers['retry-after'] as string | undefined),
          text: Buffer.concat(chunks).toString('utf8').slice(0, 300).replace(/\s+/g, ' ').trim(),
        });
      res.on('end', done);
      res.on('close', done);
      res.on('error', done);
    });
    Readable.from(src).on('error', (e) => req.destroy(e)).pipe(req);
  });
}

export const webhookTarget: Target<WebhookParams> = {
  kind: 'webhook',
  params: webhookParams,
  // One POST carries every recipient the route took, each with its own captures (routed).
  takesManyRecipients: true,
  // The origin: routes posting to one server share its limit and its circuit breaker.
  endpoint: (p) => new URL(p.url).origin,
  async deliver(msg, p, ctx): Promise<Receipt> {
    const body = await buildBody(msg, p, ctx);
    const headers: Record<string, string> = {
      'user-agent': 'Postroom-Webhook/1',
      // Standard Webhooks: webhook-id is the idempotency key, the same on every attempt.
      'webhook-id': ctx.deliveryId,
    };
    if (p.format === 'raw') {
      headers['x-postroom-envelope'] = asciiJson({ mailFrom: msg.message.mailFrom, rcptTo: ctx.recipients, messageId: msg.message.id });
    }
    if (p.secret) {
      const ts = Math.floor(Date.now() / 1000);
      headers['webhook-timestamp'] = String(ts);
      headers['webhook-signature'] = await signStandardWebhook(p.secret, ctx.deliveryId, ts, body.buffer ?? (await body.stream()));
    }
    if (p.token) headers.authorization = `Bearer ${p.token}`;
    const timeout = AbortSignal.timeout(p.timeout);
    let res: Awaited<ReturnType<typeof post>>;
    try {
      res = await post(p, headers, body, AbortSignal.any([ctx.signal, timeout]));
    } catch (err) {
      throw networkError(err, ctx, timeout, p.timeout);
    }
    if (res.status >= 200 && res.status < 300) return { summary: `HTTP ${res.status}`, status: res.status };
    throw httpStatusError(res.status, res.text, res.retryAfter);
  },
};
