import type { Readable } from 'node:stream';
import type { DeliveryContext, ParsedMessage } from '../core/delivery.js';
import type { StoredPart } from '../core/message.js';

/**
 * What a webhook receives: the JSON document (documented in docs/delivery.md), a multipart
 * form carrying the same document plus files, or the raw message. Attachments travel inline
 * (base64 in JSON, file fields in multipart) while the total stays under `inlineLimit`; the
 * rest as URLs into the API, which need the API token (they are not signed links).
 */

export type AttachmentMode = 'auto' | 'inline' | 'url' | 'none';

export interface PayloadOptions {
  attachments: AttachmentMode;
  /** Bytes of attachment content carried inside one request, in total. */
  inlineLimit: number;
}

interface AttachmentEntry {
  id: string;
  filename: string | null;
  contentType: string;
  contentId: string | null;
  disposition: 'attachment' | 'inline';
  size: number;
  sha256: string;
  /** API path of the bytes (needs the API token). */
  path: string;
  /** Absolute URL when http.publicUrl is configured. */
  url?: string;
  /** base64 content (JSON format, within the inline budget). */
  content?: string;
  /** Name of the form field carrying the bytes (multipart format). */
  field?: string;
}

async function readAll(src: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of src as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

const messagesPath = (id: string) => `/api/v1/messages/${encodeURIComponent(id)}`;

/** Which attachment parts get their bytes carried inside the request, by the inline budget. */
function inlineSet(parts: StoredPart[], o: PayloadOptions): Set<string> {
  const out = new Set<string>();
  if (o.attachments === 'url' || o.attachments === 'none') return out;
  let budget = o.inlineLimit;
  for (const p of parts) {
    // 'inline' mode still respects the limit: one 200 MiB attachment must not become a 270 MiB JSON string.
    if (p.size <= budget) {
      out.add(p.id);
      budget -= p.size;
    }
  }
  return out;
}

/** The JSON document for one delivery; `carry` decides how attachment bytes travel. */
export async function webhookDocument(
  msg: ParsedMessage,
  ctx: DeliveryContext,
  o: PayloadOptions,
  carry: 'base64' | 'field' = 'base64',
): Promise<{ doc: Record<string, unknown>; files: { field: string; part: StoredPart }[] }> {
  const m = msg.message;
  const base = ctx.publicUrl?.replace(/\/+$/, '');
  const attachable = msg.parts.filter((p) => p.kind === 'attachment' || p.kind === 'inline');
  const carried = inlineSet(attachable, o);
  const files: { field: string; part: StoredPart }[] = [];
  const attachments: AttachmentEntry[] = [];
  if (o.attachments !== 'none') {
    for (const p of attachable) {
      const path = `${messagesPath(m.id)}/attachments/${encodeURIComponent(p.id)}`;
      const a: AttachmentEntry = {
        id: p.id,
        filename: p.filename,
        contentType: p.contentType,
        contentId: p.contentId,
        disposition: p.kind === 'inline' ? 'inline' : 'attachment',
        size: p.size,
        sha256: p.sha256,
        path,
        ...(base ? { url: base + path } : {}),
      };
      if (carried.has(p.id)) {
        if (carry === 'base64') a.content = (await readAll(await msg.openPart(p))).toString('base64');
        else {
          a.field = `attachment-${p.idx}`;
          files.push({ field: a.field, part: p });
        }
      }
      attachments.push(a);
    }
  }
  const doc = {
    type: 'message.received',
    deliveryId: ctx.deliveryId,
    attempt: ctx.attempt,
    route: ctx.route,
    captures: ctx.captures,
    // One POST may carry several recipients of the route: each with the captures its own
    // address produced (ogo+1@ and ogo+2@ are objectId 1 and 2, not 1 twice).
    routed: ctx.recipients.map((recipient) => ({ recipient, captures: ctx.recipientCaptures[recipient] ?? ctx.captures })),
    message: {
      id: m.id,
      messageId: m.messageId,
      receivedAt: m.receivedAt,
      size: m.size,
      sha256: m.rawSha256,
      status: m.status,
      path: messagesPath(m.id),
      ...(base ? { url: base + messagesPath(m.id), rawUrl: `${base}${messagesPath(m.id)}/raw` } : {}),
    },
    envelope: {
      mailFrom: m.mailFrom,
      rcptTo: m.rcptTo,
      recipients: ctx.recipients,
      ingress: m.ingress,
      clientIp: m.clientIp,
      helo: m.helo,
      authUser: m.authUser,
    },
    headers: msg.headers,
    from: msg.addresses.from ?? [],
    to: msg.addresses.to ?? [],
    cc: msg.addresses.cc ?? [],
    replyTo: msg.addresses.replyTo ?? [],
    subject: m.subject,
    date: m.date,
    text: await msg.text(),
    html: await msg.html(),
    attachments,
  };
  return { doc, files };
}

/** A multipart/form-data body: field `payload` (the JSON document) and one file field per carried attachment. */
export async function multipartBody(
  msg: ParsedMessage,
  ctx: DeliveryContext,
  o: PayloadOptions,
): Promise<{ body: Buffer; contentType: string }> {
  const { doc, files } = await webhookDocument(msg, ctx, o, 'field');
  const form = new FormData();
  form.append('payload', new Blob([JSON.stringify(doc)], { type: 'application/json' }));
  for (const f of files) {
    const bytes = await readAll(await msg.openPart(f.part));
    form.append(f.field, new Blob([new Uint8Array(bytes)], { type: f.part.contentType }), f.part.filename ?? f.field);
  }
  // Response serialises FormData with a boundary it picks: the standard encoder, not ours.
  const res = new Response(form);
  return { body: Buffer.from(await res.arrayBuffer()), contentType: res.headers.get('content-type')! };
}
