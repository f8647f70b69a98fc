import { Readable } from 'node:stream';
import { z } from 'zod';
import { newId } from '../core/ids.js';
import type { BlobStore } from '../store/ports.js';
import { HeaderSniffer } from '../mime/header-sniff.js';
import { transact, type Db } from '../store/db.js';
import { deliveryId, insertDeliveries, pendingDeliveryRow } from '../store/deliveries.js';
import { insertMessages, newMessageRow } from '../store/messages.js';

/** The delivery route name outbound messages are queued under (no configured route may take it). */
export const OUTBOUND_ROUTE = 'outbound';

const addressList = z.union([z.string().min(3).max(998), z.array(z.string().min(3).max(998)).max(500)]);

/** What a client posts to send a message through an account. */
export const OutboundRequest = z.strictObject({
  account: z.string().min(1).max(64).describe('id of the mail account whose SMTP server sends it'),
  status: z
    .enum(['sending', 'draft'])
    .default('sending')
    .describe('`sending`: queue it for the delivery worker now; `draft`: keep it, and send it when PATCHed to `sending`'),
  from: z.string().min(3).max(998).optional().describe("From: address; default: the account's address"),
  to: addressList.optional(),
  cc: addressList.optional(),
  bcc: addressList.optional().describe('envelope recipients only; no Bcc: header is written'),
  replyTo: z.string().min(3).max(998).optional(),
  subject: z.string().max(998).default(''),
  text: z.string().optional().describe('text/plain body'),
  html: z.string().optional().describe('text/html body; inline images by cid:'),
  inReplyTo: z.string().max(998).optional().describe('Message-ID this one answers (RFC 5322 §3.6.4)'),
  references: z.union([z.string().max(998), z.array(z.string().max(998)).max(100)]).optional(),
  attachments: z
    .array(
      z.strictObject({
        filename: z.string().min(1).max(255),
        contentType: z.string().max(255).optional(),
        content: z.string().describe('base64'),
        cid: z.string().max(255).optional().describe('Content-ID: the part is an inline image the HTML names as cid:VALUE'),
      }),
    )
    .max(100)
    .default([]),
});

export type OutboundRequest = z.output<typeof OutboundRequest>;

const list = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The bare address of 'Name <a@b>' or 'a@b'. */
export function bareAddress(s: string): string {
  const m = /<([^<>]*)>\s*$/.exec(s);
  return (m ? m[1] : s).trim();
}

/** Build the RFC 5322 bytes of a request (nodemailer's composer: MIME structure, encodings, a Message-ID of ours). */
export async function compose(req: OutboundRequest, from: string, hostname: string): Promise<{ raw: Buffer; messageId: string; envelope: { mailFrom: string; rcptTo: string[] } }> {
  const messageId = `<${newId()}@${hostname}>`;
  // Loaded on first use: a serve that never composes mail does not carry nodemailer.
  const { default: MailComposer } = await import('nodemailer/lib/mail-composer/index.js');
  const composer = new MailComposer({
    from,
    to: list(req.to),
    cc: list(req.cc),
    bcc: list(req.bcc),
    replyTo: req.replyTo,
    subject: req.subject,
    text: req.text,
    html: req.html,
    inReplyTo: req.inReplyTo,
    references: req.references,
    messageId,
    attachments: req.attachments.map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      content: Buffer.from(a.content, 'base64'),
      cid: a.cid,
      contentDisposition: a.cid ? ('inline' as const) : ('attachment' as const),
    })),
  });
  const raw = await new Promise<Buffer>((resolve, reject) => composer.compile().build((err, out) => (err ? reject(err) : resolve(out))));
  const rcptTo = [...new Set([...list(req.to), ...list(req.cc), ...list(req.bcc)].map(bareAddress))];
  return { raw, messageId, envelope: { mailFrom: bareAddress(from), rcptTo } };
}

/**
 * Keep a composed message (status `sending`, ingress `api`), its link to the account, and its
 * outbound delivery, in one transaction: a crash cannot leave a message nobody will send.
 */
export async function keepForSending(
  deps: { db: Db; blobs: BlobStore },
  account: string,
  built: { raw: Buffer; envelope: { mailFrom: string; rcptTo: string[] } },
  draft = false,
): Promise<{ id: string; deliveryId: string | null }> {
  const sniffer = new HeaderSniffer();
  sniffer.push(built.raw);
  const staged = await deps.blobs.stage(Readable.from([built.raw]));
  const id = newId();
  const now = new Date().toISOString();
  const row = {
    ...newMessageRow(id, { ...built.envelope, ingress: 'api', receivedAt: new Date() }, staged, sniffer.result(), null),
    // Our own message: its Message-ID is new, so no dedup key (a second identical request is a second message).
    dedup_key: null,
    status: draft ? 'draft' : 'sending',
  };
  const dlv = deliveryId(id, OUTBOUND_ROUTE, 0);
  try {
    await deps.db.kysely.transaction().execute(async (trx) => {
      await deps.blobs.commit([staged], trx);
      await insertMessages(trx, [row]);
      await trx.insertInto('mail_links').values({ message: id, account, folder: null, kind: 'outbound', uid: null, route: null, created_at: now }).execute();
      if (!draft) await insertDeliveries(trx, [outboundDelivery(id, account, built.envelope.rcptTo, now)]);
    });
  } catch (err) {
    await deps.blobs.discard(staged);
    throw err;
  }
  return { id, deliveryId: draft ? null : dlv };
}

/** The delivery that sends message `id` through `account` (the outbound target, outbound/send.ts). */
export function outboundDelivery(id: string, account: string, rcptTo: string[], now: string) {
  return pendingDeliveryRow(id, { route: OUTBOUND_ROUTE, targetIndex: 0, kind: 'outbound', params: { account }, recipients: rcptTo, captures: {} }, now);
}

/**
 * A draft switched to `sending` (the seed's status-driven sending): its status and its outbound
 * delivery change in one transaction, and only from `draft`, so two requests queue it once.
 * Returns the delivery id, or undefined when the message is no draft of an account.
 */
export async function sendDraft(db: Db, id: string): Promise<string | undefined> {
  return transact(db, async (trx) => {
    const link = await trx.selectFrom('mail_links').select('account').where('message', '=', id).where('kind', '=', 'outbound').executeTakeFirst();
    const m = await trx.selectFrom('messages').select('rcpt_to').where('id', '=', id).where('status', '=', 'draft').executeTakeFirst();
    if (!link || !m) return undefined;
    const res = await trx.updateTable('messages').set({ status: 'sending' }).where('id', '=', id).where('status', '=', 'draft').executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) return undefined;
    const rcpt = JSON.parse(m.rcpt_to) as string[];
    await insertDeliveries(trx, [outboundDelivery(id, link.account, rcpt, new Date().toISOString())]);
    return deliveryId(id, OUTBOUND_ROUTE, 0);
  });
}
