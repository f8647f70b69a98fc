import { asMailError, type MailError } from '../../core/errors.js';
import type { StoredMessage } from '../../core/message.js';
import type { Accept } from '../../intake/accept.js';
import { firstAddress, headerValue } from '../pipe-source.js';
import { parseHeaderBlock } from '../../mime/header-sniff.js';

/** Where a fetched message came from: the envelope intake records for it. */
export interface FetchOrigin {
  ingress: 'imap' | 'pop3';
  /** Folder id: the dedup scope, so a re-fetch keeps nothing twice. */
  folder: string;
  /** The envelope recipient (routing recipient of the folder, else the account's address). */
  recipient: string;
  /** The server we fetched from (the trace header's "from"). */
  host: string;
  /** Account user name (recorded as the envelope's auth user: who the mail was fetched as). */
  username: string;
}

/** How keeping one fetched message went. */
export type KeepOutcome =
  | { kind: 'kept'; message: StoredMessage }
  /** Refused for good (too large, empty): deal with it on the server (moveOnFailure), never retry. */
  | { kind: 'refused'; error: MailError }
  /** Could not keep it now (store down, disk full): leave it on the server, try again later. */
  | { kind: 'failed'; error: MailError };

const HEAD_PEEK = 64 * 1024;

/**
 * Read the start of a message until its header block ends (or 64 KiB), so the envelope sender
 * can be taken from its headers before intake starts; the bytes read are handed on unchanged.
 */
async function peekHead(raw: AsyncIterable<Uint8Array>): Promise<{ head: Buffer; rest: AsyncIterable<Uint8Array> }> {
  const it = raw[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  while (size < HEAD_PEEK) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    const b = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    chunks.push(b);
    size += b.length;
    const all = Buffer.concat(chunks);
    if (all.includes('\r\n\r\n') || all.includes('\n\n')) break;
  }
  const head = Buffer.concat(chunks);
  const rest = (async function* () {
    if (head.length) yield head;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  })();
  return { head, rest };
}

/**
 * Where a fetched message's envelope sender is read, in fetchmail's order (transact.c,
 * readheaders): Return-Path first (RFC 5321 §4.4: the final MTA records MAIL FROM there), then
 * the headers naming who is responsible for sending it, then its author. A mailbox often has
 * no Return-Path (mail appended by a client, a server that does not add one), and taking the
 * null sender then would make routes that refuse `<>` (spool, webhook) refuse real mail.
 */
const SENDER_HEADERS = ['return-path', 'resent-sender', 'sender', 'resent-from', 'from', 'reply-to', 'apparently-from'];

/** An address usable as MAIL FROM: one local@domain, no spaces, brackets or line breaks. */
const MAILBOX = /^[^\s<>(),;:@"]+@[^\s<>(),;:@"]+$/;

/**
 * The envelope sender of a fetched message, from its header block (see SENDER_HEADERS). A
 * `Return-Path: <>` is kept as the null sender: the message is a bounce (RFC 5321 §4.5.5), and
 * answering its From: would start a loop. A header whose address is unusable is skipped, as
 * fetchmail skips a multi-line one; with none at all the sender is '' (we never invent one).
 */
export function envelopeSenderOf(head: Buffer): string {
  const end = head.indexOf('\r\n\r\n') >= 0 ? head.indexOf('\r\n\r\n') : head.indexOf('\n\n');
  const headers = parseHeaderBlock(end >= 0 ? head.subarray(0, end + 2) : head);
  for (const name of SENDER_HEADERS) {
    const value = headerValue(headers, name);
    if (value === undefined) continue;
    if (name === 'return-path' && /^<\s*>$/.test(value.trim())) return '';
    // A bare address may carry a comment: `alice@example.org (Alice)` (RFC 5322 §3.2.2).
    const address = firstAddress(value.replace(/\([^()]*\)/g, ' '));
    if (address && MAILBOX.test(address)) return address;
  }
  return '';
}

/** Keep one fetched message through intake; resolves only after it is durable (or refused). */
export async function keepFetched(
  accept: Accept,
  origin: FetchOrigin,
  raw: AsyncIterable<Uint8Array>,
  opts: { maxSize: number; receivedAt?: Date },
): Promise<KeepOutcome> {
  try {
    const { head, rest } = await peekHead(raw);
    const message = await accept(
      {
        mailFrom: envelopeSenderOf(head),
        rcptTo: [origin.recipient],
        ingress: origin.ingress,
        clientHostname: origin.host,
        authUser: origin.username,
        receivedAt: opts.receivedAt ?? new Date(),
      },
      rest,
      { maxSize: opts.maxSize, dedupScope: origin.folder },
    );
    return { kind: 'kept', message };
  } catch (err) {
    const e = asMailError(err);
    return e.transient ? { kind: 'failed', error: e } : { kind: 'refused', error: e };
  }
}
