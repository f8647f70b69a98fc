import { Readable } from 'node:stream';
import type { AddressLike, ParsedMessage } from '../../src/core/delivery.js';
import type { HeaderLine, StoredMessage, StoredPart } from '../../src/core/message.js';
import { newId } from '../../src/core/ids.js';

/** A part for a fake message: bytes plus the row fields that matter. */
export interface FakePart {
  kind: StoredPart['kind'];
  contentType: string;
  filename?: string;
  contentId?: string;
  body?: Buffer | string;
}

/** What a test says about a message; everything else gets a plain default. */
export interface FakeMessage {
  mailFrom?: string;
  rcptTo: string[];
  clientIp?: string | null;
  authUser?: string | null;
  subject?: string;
  headers?: HeaderLine[];
  from?: AddressLike[];
  replyTo?: AddressLike[];
  to?: AddressLike[];
  size?: number;
  parts?: FakePart[];
  text?: string | null;
  html?: string | null;
  raw?: string;
  /** Parse defects (core/mime-defects.ts), and whether the message could be parsed at all. */
  defects?: StoredMessage['defects'];
  parseStatus?: StoredMessage['parseStatus'];
}

/** An in-memory ParsedMessage, as buildParsedView would give from the store. */
export function fakeParsed(f: FakeMessage): ParsedMessage {
  const id = newId();
  const raw = Buffer.from(f.raw ?? `Subject: ${f.subject ?? ''}\r\n\r\n${f.text ?? ''}\r\n`);
  const message: StoredMessage = {
    id,
    ingress: 'smtp',
    mailFrom: f.mailFrom ?? 'sender@example.com',
    rcptTo: f.rcptTo,
    clientIp: f.clientIp === undefined ? '127.0.0.1' : f.clientIp,
    helo: 'client.example',
    authUser: f.authUser ?? null,
    receivedAt: new Date().toISOString(),
    messageId: `<${id}@test>`,
    subject: f.subject ?? null,
    from: f.from?.[0]?.address ?? null,
    date: null,
    size: f.size ?? raw.length,
    rawSha256: '0'.repeat(64),
    trace: null,
    status: 'received',
    parseStatus: f.parseStatus ?? 'parsed',
    parseError: null,
    defects: f.defects ?? [],
    error: null,
  };
  const bodies = new Map<string, Buffer>();
  const parts: StoredPart[] = (f.parts ?? []).map((p, i) => {
    const pid = `${id}-${i}`;
    bodies.set(pid, Buffer.from(p.body ?? ''));
    return {
      id: pid,
      messageId: id,
      idx: i,
      kind: p.kind,
      filename: p.filename ?? null,
      originalFilename: p.filename ?? null,
      contentType: p.contentType,
      contentId: p.contentId ?? null,
      size: Buffer.byteLength(p.body ?? ''),
      sha256: '0'.repeat(64),
    };
  });
  return {
    message,
    headers: f.headers ?? (f.subject ? [['Subject', f.subject]] : []),
    addresses: { from: f.from, to: f.to, replyTo: f.replyTo },
    parts,
    openRaw: async () => Readable.from([raw]),
    openRawWithTrace: async () => Readable.from([raw]),
    openPart: async (p) => Readable.from([bodies.get(p.id) ?? Buffer.alloc(0)]),
    text: async () => (f.text === undefined ? null : f.text),
    html: async () => (f.html === undefined ? null : f.html),
  };
}
