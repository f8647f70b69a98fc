import iconv from 'iconv-lite';
import libmime from 'libmime';
import type { HeaderLine } from '../core/message.js';

/** The few header fields intake needs before the message is kept. */
export interface SniffedHeaders {
  messageId: string | null;
  subject: string | null;
  from: string | null;
  date: string | null;
  /** The header block was complete (blank line seen) within the limit. */
  complete: boolean;
  /** Header block size in bytes, up to the limit. */
  size: number;
  /** Every header line read, in order (the loop check counts Received: among them). */
  lines: HeaderLine[];
}

/**
 * Collects the header block of a streaming message, up to `limit` bytes, without holding more
 * of the message than that. Feed every chunk; read `result()` at the end.
 */
export class HeaderSniffer {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private done = false;
  private complete = false;

  constructor(private readonly limit = 256 * 1024) {}

  /** Look at the next chunk of the message. */
  push(chunk: Uint8Array): void {
    if (this.done) return;
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.chunks.push(buf);
    this.bytes += buf.length;
    const all = this.chunks.length === 1 ? buf : Buffer.concat(this.chunks);
    this.chunks = [all];
    const end = headerEnd(all);
    if (end >= 0 && end <= this.limit) {
      this.chunks = [all.subarray(0, end)];
      this.bytes = end;
      this.done = true;
      this.complete = true;
    } else if (this.bytes >= this.limit) {
      this.chunks = [all.subarray(0, this.limit)];
      this.bytes = this.limit;
      this.done = true;
    }
  }

  /** Still reading the header block, its end was found within the limit, or the limit passed without one. */
  get state(): 'reading' | 'complete' | 'over' {
    return !this.done ? 'reading' : this.complete ? 'complete' : 'over';
  }

  /** Decoded fields found so far. */
  result(): SniffedHeaders {
    const block = this.chunks.length ? Buffer.concat(this.chunks) : Buffer.alloc(0);
    const lines = parseHeaderBlock(block);
    const get = (name: string) => lines.find(([n]) => n.toLowerCase() === name)?.[1] ?? null;
    const messageId = get('message-id');
    const subject = get('subject');
    const date = get('date');
    const parsedDate = date ? new Date(date) : null;
    return {
      messageId: messageId ? normaliseMessageId(messageId) : null,
      subject: subject === null ? null : decodeWords(subject),
      from: get('from') === null ? null : decodeWords(get('from')!),
      date: parsedDate && !Number.isNaN(parsedDate.getTime()) ? parsedDate.toISOString() : null,
      complete: this.complete || (this.bytes < this.limit && this.bytes > 0),
      size: this.bytes,
      lines,
    };
  }
}

/** Index of the end of the header block (the first empty line), or -1. */
function headerEnd(buf: Buffer): number {
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  if (buf.length >= 2 && buf[0] === 0x0d && buf[1] === 0x0a) return 0;
  if (buf.length >= 1 && buf[0] === 0x0a) return 0;
  if (crlf < 0) return lf;
  if (lf < 0) return crlf;
  return Math.min(crlf, lf);
}

/** Split a header block into [name, unfolded value] lines, in order. Malformed lines are skipped. */
export function parseHeaderBlock(block: Buffer | string): HeaderLine[] {
  const text = typeof block === 'string' ? block : block.toString('latin1');
  const out: HeaderLine[] = [];
  for (const raw of text.split(/\r?\n(?![ \t])/)) {
    if (!raw) continue;
    const colon = raw.indexOf(':');
    if (colon <= 0) continue;
    const name = raw.slice(0, colon).trim();
    if (!/^[!-9;-~]+$/.test(name)) continue;
    // Header bytes may be raw UTF-8 (RFC 6532); re-read them as such after splitting on latin1.
    const value = Buffer.from(escapeQWordOctets(raw.slice(colon + 1)), 'latin1').toString('utf8').replace(/\r?\n[ \t]+/g, ' ').trim();
    out.push([name, value]);
  }
  return out;
}

/** '<abc@x>' from ' <abc@x> (comment)'; a bare id is bracketed. */
export function normaliseMessageId(v: string): string | null {
  const m = /<([^<>\s]+)>/.exec(v);
  if (m) return `<${m[1]}>`;
  const bare = v.trim().split(/\s+/)[0];
  return bare ? `<${bare}>` : null;
}

/**
 * A Q encoded-word may hold only printable US-ASCII (RFC 2047 §5 (3)), but mailers write raw
 * 8-bit octets into them (`=?iso-8859-1?Q?Fr\xF6sche?=`). Read as UTF-8 with the rest of the
 * field, such an octet became U+FFFD before the word's own charset was applied ("Frï¿½sche"):
 * written as `=XX` it is decoded in the charset the word names, as the sender meant. For octets
 * that are valid UTF-8 this changes nothing (the decoder turned them back into the same bytes).
 * `latin1`: the field's bytes, one char per octet.
 */
function escapeQWordOctets(latin1: string): string {
  if (!/[\x80-\xff]/.test(latin1)) return latin1;
  return latin1.replace(/=\?[^?\s]+\?[Qq]\?[^?]*\?=/g, (word) =>
    word.replace(/[\x80-\xff]/g, (c) => `=${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`),
  );
}

const UTF7_WORD = /=\?utf-?7(?:\*[^?]*)?\?([QqBb])\?([^?]*)\?=/gi;

/**
 * Decode RFC 2047 encoded words; leaves undecodable text as it was. UTF-7 (RFC 2152, Outlook
 * writes `=?utf-7?Q?Fr+APY-sche?=`) is decoded here: libmime's charset table passes it through
 * undecoded. Its octets come out of the Q or B decoding as latin1, one char per octet.
 */
export function decodeWords(v: string): string {
  try {
    const utf7 = v.replace(UTF7_WORD, (_w, enc: string, text: string) =>
      iconv.decode(Buffer.from(libmime.decodeWord('latin1', enc, text), 'latin1'), 'utf7'),
    );
    return libmime.decodeWords(utf7);
  } catch {
    return v;
  }
}
