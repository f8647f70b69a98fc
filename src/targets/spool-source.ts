import { Readable } from 'node:stream';
import type { AddressObject } from 'mailparser';
import { mailError } from '../core/errors.js';
import { loadMailparser } from '../mime/parse.js';
import type { AddressLike, ParsedMessage } from '../core/delivery.js';
import type { HeaderLine } from '../core/message.js';
import { sanitiseFilename } from '../mime/filename.js';

/**
 * What the spool target writes from: the outer message, or (with `attachedMessage`) the first
 * attached message/rfc822, as when a fax arrives wrapped in a forward or a delivery report.
 */
export interface SpoolSource {
  subject: string;
  headers: HeaderLine[];
  from: AddressLike[];
  replyTo: AddressLike[];
  text(): Promise<string | null>;
  html(): Promise<string | null>;
  /** The message as MIME bytes. */
  raw(): Promise<Readable>;
  /** Attachment and inline parts, file names already sanitised. */
  files: SpoolFile[];
}

export interface SpoolFile {
  filename: string;
  contentType: string;
  contentId: string | null;
  inline: boolean;
  /** The bytes, streamed from the store where they live there (attachments can be large). */
  open(): Promise<Buffer | Readable>;
}

/** Largest attached message parsed in memory (the outer message's limit bounds it anyway). */
const MAX_INNER = 64 * 1024 * 1024;

async function readAll(src: Readable, limit = MAX_INNER): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of src as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > limit) {
      src.destroy();
      // Permanent: the same message is as large at every attempt.
      throw mailError('TOO_LARGE', `attached message larger than ${limit} bytes, the most the spool target reads into memory`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** The outer message as a spool source. */
export function outerSource(msg: ParsedMessage): SpoolSource {
  return {
    subject: msg.message.subject ?? '',
    headers: msg.headers,
    from: msg.addresses.from ?? [],
    replyTo: msg.addresses.replyTo ?? [],
    text: () => msg.text(),
    html: () => msg.html(),
    raw: () => msg.openRaw(),
    files: msg.parts
      .filter((p) => p.kind === 'attachment' || p.kind === 'inline')
      .map((p) => ({
        filename: p.filename ?? sanitiseFilename(null, { maxLength: 200, index: p.idx, contentType: p.contentType }),
        contentType: p.contentType,
        contentId: p.contentId,
        inline: p.kind === 'inline',
        open: () => msg.openPart(p),
      })),
  };
}

function flatten(v: AddressObject | AddressObject[] | undefined): AddressLike[] {
  const out: AddressLike[] = [];
  for (const obj of [v ?? []].flat()) {
    for (const a of obj.value) {
      if (a.address) out.push({ name: a.name ?? '', address: a.address });
      for (const g of a.group ?? []) if (g.address) out.push({ name: g.name ?? '', address: g.address });
    }
  }
  return out;
}

/** The first attached message/rfc822 as a spool source, or null when there is none. */
export async function attachedSource(msg: ParsedMessage): Promise<SpoolSource | null> {
  const part = msg.parts.find((p) => p.contentType.toLowerCase() === 'message/rfc822');
  if (!part) return null;
  const bytes = await readAll(await msg.openPart(part));
  // Parsed in memory: bounded by MAX_INNER, and mailparser's own limits apply.
  const { simpleParser } = await loadMailparser();
  const m = await simpleParser(bytes, { skipImageLinks: true, skipTextLinks: true });
  const headers: HeaderLine[] = m.headerLines.map((h) => {
    const i = h.line.indexOf(':');
    return [h.line.slice(0, i), h.line.slice(i + 1).replace(/\r?\n[ \t]+/g, ' ').trim()];
  });
  return {
    subject: m.subject ?? '',
    headers,
    from: flatten(m.from),
    replyTo: flatten(m.replyTo),
    text: async () => (typeof m.text === 'string' ? m.text : null),
    html: async () => (typeof m.html === 'string' ? m.html : null),
    raw: async () => Readable.from([bytes]),
    files: m.attachments.map((a, i) => ({
      filename: sanitiseFilename(a.filename, { maxLength: 200, index: i + 1, contentType: a.contentType }),
      contentType: a.contentType,
      contentId: a.cid ?? null,
      inline: a.contentDisposition === 'inline' || (!!a.cid && a.related === true),
      open: async () => a.content,
    })),
  };
}
