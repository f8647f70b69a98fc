import { Readable, type Transform } from 'node:stream';
import iconv from 'iconv-lite';
import { pipeline } from 'node:stream/promises';
import type { AddressObject, AttachmentStream, EmailAddress, MessageText } from 'mailparser';
import { newId } from '../core/ids.js';
import type { HeaderLine, PartKind, StoredMessage } from '../core/message.js';
import type { BlobStore, StagedBlob } from '../store/ports.js';
import type { ParsedRows } from '../store/messages.js';
import { SEARCH_BODY_CHARS } from '../core/message-search.js';
import type { PartsTable } from '../store/schema.js';
import { Base64Decoder } from './base64-decoder.js';
import { decodableCharset } from './charset-alias.js';
import { sanitiseFilename } from './filename.js';
import { parseMailDate } from './date.js';
import { orderDefects, type MimeDefect } from '../core/mime-defects.js';
import { separateHeaders } from './header-separator.js';
import { decodeWords, parseHeaderBlock } from './header-sniff.js';
import { UU_ENCODINGS, UuDecoder } from './uu-decoder.js';
import { applySplitterFixes, compareBoundary, type SplitMimeNode } from './splitter-fixes.js';

/**
 * Text bound for the database: PostgreSQL refuses NUL in text columns (SQLite would keep it and
 * truncate it in C callers), and an RFC 2047 word or RFC 2231 parameter can carry one (`%00`).
 * It becomes U+FFFD, so the kept original still shows where something was.
 */
export function dbText<T extends string | null>(s: T): T {
  return (s === null ? s : s.replace(/\u0000/g, '\ufffd')) as T;
}

/**
 * mailparser and what it pulls in (html-to-text, encoding-japanese, he: ~5 MiB of heap), loaded
 * at the first parse: small messages are parsed on the parse thread, so a server's main thread
 * may never need it.
 */
export function loadMailparser(): Promise<typeof import('mailparser')> {
  return (mailparser ??= import('mailparser').then((m) => {
    applySplitterFixes();
    return m;
  }));
}
let mailparser: Promise<typeof import('mailparser')> | undefined;

/**
 * A message that is well-formed enough to store but breaks one of our parse limits. Internal,
 * not a MailError: parseStored catches it like any malformed mail, and the message is kept and
 * routed as `raw` with this as its parse error; no sender or target ever sees it.
 */
export class ParseLimitError extends Error {
  override name = 'ParseLimitError';
}

export interface Address {
  name: string;
  address: string;
}

/** What saveParsed records for one message, with the addresses as parsing gives them. */
export interface ParsedSave extends ParsedRows {
  addresses: { from: Address[]; to: Address[]; cc: Address[]; replyTo: Address[] };
}

/** What parsing needs of a blob store: read the message, stage its parts, drop them on failure. */
/** What parsing reads of `parse:` in the config (config/schema.ts validates it). */
export interface ParseLimits {
  maxDepth: number;
  maxHeaderSize: number;
  maxFilenameLength: number;
}

export type ParseBlobs = Pick<BlobStore, 'open' | 'stage' | 'discard'>;

/** The result of parsing: blobs staged (not yet committed) and the rows to save. */
export interface ParseResult {
  staged: StagedBlob[];
  save: ParsedSave;
  /** The text/HTML bodies were cut at MAX_TEXT_BYTES (the raw message is whole). */
  truncated?: boolean;
}

interface PartDraft {
  kind: PartKind;
  staged: StagedBlob;
  contentType: string;
  filename: string | null;
  originalFilename: string | null;
  contentId: string | null;
}

/** A mailsplit node as mailparser's internal splitter hands it over (only what we use). */
interface SplitNode extends SplitMimeNode {
  parentNode?: SplitNode | null;
  contentType?: string | false;
  disposition?: string | false;
  /** Content-Transfer-Encoding, lower case (set once the node's headers are parsed). */
  encoding?: string | false;
  /** The transfer decoder mailparser pipes the node's body through. */
  getDecoder?: () => Transform;
}
interface SplitChunk extends SplitNode {
  type: string;
  /** For 'body' chunks: the node the bytes belong to, and the bytes. */
  node?: SplitNode;
  value?: Buffer;
}
type ProcessChunk = (data: SplitChunk, done: (err?: Error | null) => void) => void;

/** Every address of an address header, groups flattened (RFC 5322 §3.4 group syntax). */
export function flattenAddresses(v: AddressObject | AddressObject[] | undefined): Address[] {
  const out: Address[] = [];
  const walk = (list: EmailAddress[]) => {
    for (const a of list) {
      if (a.group) walk(a.group);
      else if (a.address || a.name) out.push({ name: a.name ?? '', address: a.address ?? '' });
    }
  };
  for (const o of v === undefined ? [] : Array.isArray(v) ? v : [v]) walk(o.value);
  return out;
}

/**
 * Encoded bytes of text and HTML body kept per message. mailparser collects text/plain and
 * text/html in memory (about five times their size at the peak: chunks, the joined buffer, the
 * string, the line-ending rewrite), so a 200 MiB text body would cost a gigabyte. Past this the
 * rest of the body is not decoded; the raw message keeps every byte. 2 MiB (a long book of
 * plain text; mail clients clip far earlier): with 8 MiB the peak while a 200 MiB text message
 * was parsed stood ~20 MiB higher, a sixth of the 128 MiB a whole
 * process may hold while it takes such a message (bench/scenarios/large-message-rss.ts).
 */
export const MAX_TEXT_BYTES = 2 * 1024 * 1024;

/**
 * Types mailparser collects in memory as the message text unless marked attachment. Not
 * message/delivery-status (keepDeliveryStatus): a bounce's Final-Recipient, Action, Status and
 * Diagnostic-Code (RFC 3464) stay a part of their own, readable as fields (delivery-status.ts),
 * instead of prose in the text.
 */
const TEXT_TYPES = new Set(['text/plain', 'text/html']);

/** Whether mailparser will gather this node's body in memory (its rule, RFC 2183 defaults). */
function collectedInMemory(node: SplitNode): boolean {
  const type = node.contentType || 'text/plain';
  return TEXT_TYPES.has(type) && (!node.disposition || node.disposition === 'inline');
}

/**
 * Base64 bodies go through our byte-only decoder instead of mailsplit's string-based one.
 * `onBytes`, when given, is told every byte the decoder puts out: the part's body with its
 * transfer encoding undone and still in its own charset (a text part kept as sent).
 */
function decodeBase64AsBytes(node: SplitNode, utf7: boolean, onBytes?: (b: Buffer) => void): void {
  const original = node.getDecoder;
  if (!original) return;
  // The original first: it parses the node's headers, which is where `encoding` comes from.
  node.getDecoder = () => {
    let decoder = original.call(node);
    if (node.encoding === 'base64') decoder = new Base64Decoder();
    // mailsplit passes an unknown encoding through; uuencode is common enough to decode.
    else if (node.encoding && UU_ENCODINGS.has(node.encoding)) decoder = new UuDecoder();
    if (onBytes || utf7) {
      // push is where a Transform's output leaves it: seen there, nothing is read twice.
      const push = decoder.push.bind(decoder);
      const fromUtf7 = utf7 ? iconv.getDecoder('utf7') : null;
      decoder.push = (chunk: unknown, encoding?: BufferEncoding) => {
        if (chunk === null || chunk === undefined) {
          const rest = fromUtf7?.end();
          if (rest) push(Buffer.from(rest, 'utf8'));
          return push(chunk, encoding);
        }
        const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string, encoding);
        onBytes?.(bytes);
        return push(fromUtf7 ? Buffer.from(fromUtf7.write(bytes), 'utf8') : bytes);
      };
    }
    return decoder;
  };
}

/**
 * A text/plain part in UTF-7 (RFC 2152). libmime refuses the charset outright, because in HTML
 * it smuggles markup past filters (`+ADw-script+AD4-`), and leaves the text undecoded. Plain
 * text is never run as markup (served as text/plain, nosniff), so there it is decoded here;
 * text/html in UTF-7 stays refused.
 */
function isUtf7Text(node: SplitNode & { charset?: string | false }): boolean {
  return !node.multipart && (node.contentType || 'text/plain') === 'text/plain' && /^(?:unicode-1-1-)?utf-?7$/i.test(String(node.charset || '').trim());
}

/**
 * An inline text part as sent, for its own `body` part: the media type with the parameters that
 * say how to read the bytes (charset, RFC 2046 §4.1.2; format and delsp, RFC 3676).
 */
interface BodyCapture {
  type: string;
  /** Inside an embedded message: /text shows it with a header block mailparser writes. */
  embedded: boolean;
  chunks: Buffer[];
  size: number;
}

function bodyType(node: SplitNode & { charset?: string | false; flowed?: boolean; delSp?: boolean }): string {
  const params = [node.charset ? `charset=${JSON.stringify(String(node.charset).toLowerCase())}` : '', node.flowed ? 'format=flowed' : '', node.delSp ? 'delsp=yes' : ''];
  return [node.contentType || 'text/plain', ...params.filter(Boolean)].join('; ');
}

/** Charsets /text says already: a lone text part in one of them needs no `body` part beside it. */
const PLAIN_CHARSETS = new Set(['', 'utf-8', 'utf8', 'us-ascii', 'ascii']);

/**
 * Whether the inline text parts need `body` parts of their own: more than one (an alternative, a
 * digest, an embedded message), or one in a charset /text or /html (UTF-8) does not keep.
 */
function needsBodies(bodies: BodyCapture[]): boolean {
  if (bodies.length !== 1) return bodies.length > 1;
  if (bodies[0].embedded) return true;
  const m = /^text\/(?:plain|html)(?:; charset="([^"]*)")?/.exec(bodies[0].type);
  return !m || !PLAIN_CHARSETS.has((m[1] ?? '').toLowerCase()) || /format=flowed/.test(bodies[0].type);
}

/** A multipart's boundary, then those of the multiparts around it. */
function boundariesOf(node: SplitNode): Buffer[] {
  const out: Buffer[] = [];
  for (let n: SplitNode | null | undefined = node; n; n = n.parentNode) if (n._boundary) out.push(n._boundary);
  return out;
}

/** Whether a node lies inside an embedded message/rfc822. */
function inMessage(data: SplitNode): boolean {
  for (let n = data.parentNode; n; n = n.parentNode) if (n.contentType === 'message/rfc822') return true;
  return false;
}

/** How many MIME levels lie above a splitter node (the root message is depth 0). */
function depthOf(data: SplitChunk): number {
  let d = 0;
  for (let n = data.parentNode; n; n = n.parentNode) d++;
  return d;
}

/**
 * Stream `raw` through mailparser's streaming MailParser (never simpleParser, which holds every
 * attachment in memory): each attachment and inline part streams straight into the blob store.
 * Text and HTML bodies are collected by mailparser itself.
 */
export async function parseStream(
  raw: AsyncIterable<Uint8Array>,
  deps: { blobs: ParseBlobs; config: ParseLimits },
  messageId: string,
): Promise<ParseResult> {
  const { blobs, config } = deps;
  const staged: StagedBlob[] = [];
  const drafts: PartDraft[] = [];
  let headers: HeaderLine[] = [];
  let text: MessageText | undefined;

  const { MailParser } = await loadMailparser();
  const parser = new MailParser({
    // Header size (per MIME node, root included) and node count are bounded inside the
    // splitter: a 10 MB folded header or 100k empty parts are memory and CPU attacks.
    maxHeadSize: config.maxHeaderSize,
    maxChildNodes: 1000,
    skipImageLinks: true,
    keepDeliveryStatus: true,
    skipTextToHtml: true,
    checksumAlgo: false,
  });
  // Depth: mailparser walks its node tree recursively when it assembles the text, so a message
  // nested 100k levels deep (a few bytes per level) would overflow the stack. mailsplit gives
  // every node its parent; refuse the first node that is too deep, before it is built.
  const internal = parser as unknown as { processChunk?: ProcessChunk };
  const processChunk = internal.processChunk?.bind(parser);
  if (!processChunk) throw new Error('mailparser changed: processChunk is gone; the depth limit needs it');
  let textBytes = 0;
  let truncated = false;
  const defects = new Set<MimeDefect>();
  const multiparts: SplitNode[] = [];
  let preambleBytes = 0;
  const captured: BodyCapture[] = [];
  let capturedBytes = 0;
  internal.processChunk = (data, done) => {
    if (data.type === 'node') {
      if (depthOf(data) > config.maxDepth) {
        done(new ParseLimitError(`MIME nesting deeper than ${config.maxDepth} levels`));
        return;
      }
      let capture: BodyCapture | undefined;
      if (!data.multipart && collectedInMemory(data)) captured.push((capture = { type: bodyType(data), embedded: depthOf(data) > 0 && inMessage(data), chunks: [], size: 0 }));
      const utf7 = isUtf7Text(data);
      const declared = (data as { charset?: string | false }).charset;
      if (declared && !utf7) (data as { charset?: string | false }).charset = decodableCharset(declared);
      // mailparser hands the charset over when the node is created (after this): UTF-8 it is.
      if (utf7) (data as { charset?: string | false }).charset = 'utf-8';
      decodeBase64AsBytes(
        data,
        utf7,
        capture &&
          ((b) => {
            // The same bound as the text: what mailparser is fed is already cut at MAX_TEXT_BYTES.
            const piece = b.subarray(0, Math.max(0, MAX_TEXT_BYTES - capturedBytes));
            if (!piece.length) return;
            capturedBytes += piece.length;
            capture.size += piece.length;
            capture.chunks.push(Buffer.from(piece));
          }),
      );
      for (const d of data.postroomDefects ?? []) defects.add(d);
      if (data.multipart) multiparts.push(data);
      data.postroomEmitted = true;
      if (data.parentNode) data.parentNode.postroomChildren = (data.parentNode.postroomChildren ?? 0) + 1;
    }
    // A multipart's lines before its first delimiter: its text if no delimiter ever comes. The
    // splitter hands them over in groups that may run on past a close delimiter (its own
    // checkBoundary has seen the close by then), so they are cut at it afterwards (orphanText).
    if (data.type === 'data' && data.node?.multipart && data.node.postroomEmitted && !data.node.postroomChildren && !data.node.postroomDelimited && data.value && preambleBytes < MAX_TEXT_BYTES) {
      const piece = data.value.subarray(0, MAX_TEXT_BYTES - preambleBytes);
      preambleBytes += piece.length;
      (data.node.postroomPreamble ??= []).push(Buffer.from(piece));
    }
    if (data.type === 'body' && data.node && data.value && collectedInMemory(data.node)) {
      const room = MAX_TEXT_BYTES - textBytes;
      textBytes += data.value.length;
      if (textBytes > MAX_TEXT_BYTES) {
        truncated = true;
        if (room <= 0) {
          setImmediate(done);
          return;
        }
        processChunk({ ...data, value: data.value.subarray(0, room) }, done);
        return;
      }
    }
    const leading = data.type === 'node' ? data.postroomLeadingBody : undefined;
    if (leading?.length) {
      // The part's body began inside its header block (splitter-fixes.ts cutHeaderBlock): it
      // goes in first, through the same path (and the same text bound) as the rest of the body.
      delete data.postroomLeadingBody;
      processChunk(data, (err) => (err ? done(err) : internal.processChunk!({ type: 'body', node: data, value: leading }, done)));
      return;
    }
    processChunk(data, done);
  };
  parser.once('headerLines', (lines) => {
    // mailparser's header Map merges duplicates and loses order; the raw lines keep both.
    headers = parseHeaderBlock(lines.map((l) => l.line).join('\r\n'));
  });

  const input = separateHeaders(raw, config.maxHeaderSize, () => defects.add('missing-header-body-separator'));
  const feed = pipeline(Readable.from(input, { objectMode: false }), parser);
  const consume = (async () => {
    for await (const item of parser as AsyncIterable<AttachmentStream | MessageText>) {
      if (item.type === 'text') {
        text = item;
        continue;
      }
      try {
        const blob = await blobs.stage(item.content);
        staged.push(blob);
        drafts.push(attachmentDraft(item, blob));
      } finally {
        item.release?.();
      }
    }
  })();
  try {
    await Promise.all([feed, consume]);
  } catch (err) {
    parser.destroy();
    await Promise.allSettled([feed, consume]);
    await Promise.all(staged.map((s) => blobs.discard(s)));
    throw err;
  }

  // A multipart whose first delimiter never came has no parts: RFC 2046 §5.1.1 would have its
  // body ignored as preamble, which loses the whole message. Like Python's email, its body is
  // read as text instead (start-boundary-not-found says so).
  const orphans = multiparts.filter((m) => !m.postroomChildren && !m.postroomDelimited && m.postroomPreamble?.length);
  const orphanText = orphans.map((m) => untilClose(Buffer.concat(m.postroomPreamble!), boundariesOf(m)).toString('utf8')).join('\n');
  const plain = orphanText ? [text?.text, orphanText].filter(Boolean).join('\n') : text?.text;
  const bodies: PartDraft[] = [];
  for (const [kind, body, type] of [
    ['text', plain, 'text/plain; charset=utf-8'],
    ['html', text?.html, 'text/html; charset=utf-8'],
  ] as const) {
    if (typeof body !== 'string') continue;
    const blob = await blobs.stage(utf8Pieces(body));
    staged.push(blob);
    bodies.push({ kind, staged: blob, contentType: type, filename: null, originalFilename: null, contentId: null });
  }

  // Each inline text part as sent, after the attachments (their indexes stay as they were).
  if (needsBodies(captured)) {
    for (const c of captured) {
      const blob = await blobs.stage([Buffer.concat(c.chunks, c.size)]);
      staged.push(blob);
      drafts.push({ kind: 'body', staged: blob, contentType: c.type, filename: null, originalFilename: null, contentId: null });
    }
  }

  const parts = [...bodies, ...drafts].map((d, idx): PartsTable => {
    const named = d.kind === 'attachment' || d.kind === 'inline';
    return {
      id: newId(),
      message: messageId,
      idx,
      kind: d.kind,
      filename: named ? sanitiseFilename(d.originalFilename, { maxLength: config.maxFilenameLength, index: idx, contentType: d.contentType }) : null,
      original_filename: dbText(d.originalFilename),
      content_type: dbText(d.contentType),
      content_id: dbText(d.contentId),
      size: d.staged.size,
      sha256: d.staged.sha256,
    };
  });

  const get = (name: string) => headers.find(([n]) => n.toLowerCase() === name)?.[1] ?? null;
  const subject = get('subject');
  const from = get('from');
  // Not mailparser's date: it puts the time of parsing in place of a Date it cannot read.
  const date = parseMailDate(get('date'));
  if (date.defect) defects.add(date.defect);
  for (const m of multiparts) {
    if (!m.postroomChildren && !m.postroomDelimited) defects.add('start-boundary-not-found');
    else if (!m.postroomClosed) defects.add('close-boundary-not-found');
  }
  return {
    staged,
    save: {
      headers,
      addresses: {
        from: flattenAddresses(parser.from),
        to: flattenAddresses(parser.to),
        cc: flattenAddresses(parser.cc),
        replyTo: flattenAddresses(parser.replyTo),
      },
      subject: subject === null ? null : dbText(decodeWords(subject)),
      from: from === null ? null : dbText(decodeWords(from)),
      date: date.iso,
      parts,
      parseStatus: 'parsed',
      defects: orderDefects(defects),
      bodyText: typeof plain === 'string' ? plain.slice(0, SEARCH_BODY_CHARS) : null,
    },
    truncated,
  };
}

/**
 * A multipart body with no delimiter before its close (RFC 2046 §5.1.1): what comes before the
 * close delimiter line (or a delimiter of an enclosing multipart: `boundaries` are its own
 * first, then its ancestors'), without the line end that belongs to the delimiter. Past the close is
 * epilogue, which RFC 2046 says to ignore (Python's email reads it the same way).
 */
export function untilClose(body: Buffer, boundaries: Buffer[]): Buffer {
  if (!boundaries.length) return body;
  for (let at = 0; at < body.length; ) {
    const nl = body.indexOf(0x0a, at);
    const end = nl < 0 ? body.length : nl + 1;
    // Its own close, or any delimiter of a multipart it is in (which ends it too).
    if (body[at] === 0x2d && body[at + 1] === 0x2d && boundaries.some((b, i) => (compareBoundary(body.subarray(at, end), 0, b) || 0) >= (i === 0 ? 2 : 1))) {
      let cut = at;
      if (cut > 0 && body[cut - 1] === 0x0a) cut--;
      if (cut > 0 && body[cut - 1] === 0x0d) cut--;
      return body.subarray(0, cut);
    }
    at = end;
  }
  return body;
}

/** Characters of a body encoded per piece when it is staged. */
const TEXT_PIECE = 64 * 1024;

/**
 * A body string as UTF-8, piece by piece: encoding a body of MAX_TEXT_BYTES at once would add
 * another buffer of that size while mailparser's copies of it are still alive. A piece never
 * ends between the two halves of a surrogate pair (each half alone would encode as U+FFFD).
 */
function* utf8Pieces(s: string): Generator<Buffer> {
  for (let at = 0; at < s.length; ) {
    let end = Math.min(at + TEXT_PIECE, s.length);
    const last = s.charCodeAt(end - 1);
    if (end < s.length && last >= 0xd800 && last <= 0xdbff) end--;
    yield Buffer.from(s.slice(at, end), 'utf8');
    at = end;
  }
}

/** An attachment or inline part as a draft row: inline when it has a Content-ID a body can cite. */
function attachmentDraft(a: AttachmentStream, staged: StagedBlob): PartDraft {
  const cid = a.cid ? a.cid : null;
  // RFC 2392 cid: URLs cite a part by Content-ID (RFC 2387 multipart/related); a sender who
  // marks such a part `attachment` (RFC 2183) still means it as a file, so it stays one and
  // keeps its content_id.
  const inline = !!cid && a.contentDisposition !== 'attachment';
  // mailparser guesses a type from the file name for application/octet-stream; we keep what the
  // sender declared, since the guess is not in the message and the name is hostile input.
  const declared = a.headers.get('content-type') as { value?: unknown } | string | undefined;
  const type = typeof declared === 'string' ? declared : typeof declared?.value === 'string' ? declared.value : a.contentType;
  return {
    kind: inline ? 'inline' : 'attachment',
    staged,
    contentType: type.toLowerCase() || 'application/octet-stream',
    filename: null,
    originalFilename: a.filename ?? null,
    contentId: cid,
  };
}

/**
 * Parse a kept message from its blob. Bad mail never throws: it comes back with parseStatus `raw`
 * and the reason, its one part the raw message. Store failures (disk, database) do throw.
 */
export async function parseStored(
  msg: StoredMessage,
  deps: { blobs: ParseBlobs; config: ParseLimits },
): Promise<ParseResult> {
  const raw = await deps.blobs.open(msg.rawSha256);
  try {
    return await parseStream(raw, deps, msg.id);
  } catch (err) {
    if (isStoreError(err)) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    return { staged: [], save: rawResult(msg, reason) };
  } finally {
    raw.destroy();
  }
}

/** Errors from the blob store (ENOSPC, EIO…) are ours, not the message's: they must be retried. */
function isStoreError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) && code !== 'EMAXLEN';
}

/** The save for a message kept as raw: what intake sniffed, and the raw bytes as its only part. */
export function rawResult(msg: StoredMessage, reason: string): ParsedSave {
  return {
    headers: [],
    addresses: { from: [], to: [], cc: [], replyTo: [] },
    subject: msg.subject,
    from: msg.from,
    date: msg.date,
    parts: [
      {
        id: newId(),
        message: msg.id,
        idx: 0,
        kind: 'raw',
        filename: null,
        original_filename: null,
        content_type: 'message/rfc822',
        content_id: null,
        size: msg.size,
        sha256: msg.rawSha256,
      },
    ],
    parseStatus: 'raw',
    parseError: reason.slice(0, 1000),
  };
}
