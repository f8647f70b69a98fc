import { Readable } from 'node:stream';
import type { AddressLike, ParsedMessage } from '../core/delivery.js';
import { mailError } from '../core/errors.js';
import type { StoredMessage, StoredPart } from '../core/message.js';
import type { BlobStore } from '../store/ports.js';
import { withTrace } from './trace.js';
import type { Db } from '../store/db.js';
import { getMessageWithDetail, getParts, toStoredPart, type ParsedRows } from '../store/messages.js';

/** Largest text or html body read into memory for a target (bodies past it are cut). */
const MAX_BODY = 16 * 1024 * 1024;

async function readUtf8(src: Readable, limit = MAX_BODY): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of src as AsyncIterable<Buffer>) {
    chunks.push(c);
    size += c.length;
    if (size >= limit) {
      src.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

function addressList(v: unknown): AddressLike[] | undefined {
  if (!Array.isArray(v)) return undefined;
  return v
    .filter((a): a is { name?: unknown; address?: unknown } => !!a && typeof a === 'object')
    .map((a) => ({ name: typeof a.name === 'string' ? a.name : '', address: typeof a.address === 'string' ? a.address : '' }))
    .filter((a) => a.address);
}

/**
 * The ParsedMessage a target (or the router) sees, built from the store: the message row, its
 * ordered headers, addresses and parts, and lazy readers for the bytes. Throws NOT_FOUND when
 * the message is gone.
 */
export async function buildParsedView(deps: { db: Db; blobs: BlobStore }, messageId: string): Promise<ParsedMessage> {
  const { db, blobs } = deps;
  const found = await getMessageWithDetail(db.kysely, messageId);
  if (!found) throw mailError('NOT_FOUND', `message ${messageId} not found`);
  const parts = await getParts(db.kysely, messageId);
  return parsedView(blobs, found.message, found.detail.headers, found.detail.addresses ?? {}, parts);
}

/**
 * The same view from what the parse step (parse-and-store.ts) has just saved (the message as it read it, and the
 * rows it wrote), so that planning right after a parse does not read them back.
 */
export function viewOfParse(blobs: BlobStore, read: StoredMessage, saved: ParsedRows): ParsedMessage {
  // As the row reads after saveParsed: its decoded header fields and the parse outcome.
  const message: StoredMessage = {
    ...read,
    subject: saved.subject,
    from: saved.from,
    date: saved.date,
    parseStatus: saved.parseStatus,
    parseError: saved.parseError ?? null,
    defects: saved.defects ?? [],
  };
  const parts = [...saved.parts].sort((a, b) => a.idx - b.idx).map(toStoredPart);
  return parsedView(blobs, message, saved.headers, saved.addresses, parts);
}

function parsedView(
  blobs: BlobStore,
  message: StoredMessage,
  headers: ParsedMessage['headers'],
  addr: Record<string, unknown>,
  parts: StoredPart[],
): ParsedMessage {
  const body = (kind: 'text' | 'html') => async () => {
    const part = parts.find((p) => p.kind === kind);
    return part ? readUtf8(await blobs.open(part.sha256)) : null;
  };
  return {
    message,
    headers,
    addresses: {
      from: addressList(addr.from),
      to: addressList(addr.to),
      cc: addressList(addr.cc),
      replyTo: addressList(addr.replyTo),
    },
    parts,
    openRaw: () => blobs.open(message.rawSha256),
    openRawWithTrace: async () =>
      (await withTrace(message.trace, await blobs.open(message.rawSha256), { renameFor: message.auth?.source === 'smtp' ? message.auth.authservId : undefined })).stream,
    openPart: (part: StoredPart) => blobs.open(part.sha256),
    text: body('text'),
    html: body('html'),
  };
}
