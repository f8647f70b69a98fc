import { asMailError, type MailError } from '../core/errors.js';
import type { StoredMessage } from '../core/message.js';
import type { Accept } from '../intake/accept.js';
import { parseHeaderBlock } from '../mime/header-sniff.js';

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
 * can be taken from Return-Path before intake starts; the bytes read are handed on unchanged.
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
 * The envelope sender of a fetched message: its Return-Path (RFC 5321 §4.4: the final MTA
 * records MAIL FROM there), '' for `<>`; without one, '' as well: we never invent a sender.
 */
export function returnPathOf(head: Buffer): string {
  const end = head.indexOf('\r\n\r\n') >= 0 ? head.indexOf('\r\n\r\n') : head.indexOf('\n\n');
  const headers = parseHeaderBlock(end >= 0 ? head.subarray(0, end + 2) : head);
  const rp = headers.find(([name]) => name.toLowerCase() === 'return-path')?.[1];
  if (!rp) return '';
  const m = /<([^<>]*)>/.exec(rp);
  return (m ? m[1] : rp).trim();
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
        mailFrom: returnPathOf(head),
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
