import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { mailError } from '../core/errors.js';
import { parseHeaderBlock } from '../mime/header-sniff.js';
import type { HeaderLine } from '../core/message.js';

/**
 * The message an MTA pipes to `postroom deliver`, read chunk by chunk without ever destroying
 * the stream: whatever the outcome, the rest is read to its end (`drain`), because an MTA whose
 * write fails with EPIPE reports that instead of our status line (Postfix pipe(8) then says
 * "broken pipe", and some MTAs defer).
 */
export class PipeSource {
  private ended = false;
  private failure: unknown;
  /** Bytes handed out so far. */
  bytes = 0;

  constructor(private readonly stream: Readable) {
    stream.on('end', () => (this.ended = true));
    stream.on('error', (e) => (this.failure = e));
  }

  /** The next chunk, or null at the end. */
  async next(): Promise<Buffer | null> {
    for (;;) {
      if (this.failure) throw mailError('INTERNAL', `reading the message: ${(this.failure as Error).message}`, { cause: this.failure });
      const c = this.stream.read() as Buffer | null;
      if (c !== null) {
        this.bytes += c.length;
        return c;
      }
      if (this.ended || this.stream.readableEnded) return null;
      await new Promise<void>((resolve) => {
        const done = () => {
          this.stream.off('readable', done);
          this.stream.off('end', done);
          this.stream.off('error', done);
          resolve();
        };
        this.stream.on('readable', done);
        this.stream.on('end', done);
        this.stream.on('error', done);
      });
    }
  }

  /** Read and drop the rest; resolves at the end of input (never throws). */
  async drain(): Promise<void> {
    if (this.ended || this.stream.readableEnded || this.stream.destroyed) return;
    this.stream.resume();
    await finished(this.stream).catch(() => {});
  }

  /** Stop reading (the deadline passed: the MTA is about to give up on us anyway). */
  destroy(): void {
    this.stream.destroy();
  }
}

/** The header block (up to `limit` bytes) read off the front of a source, and the chunks read. */
export interface Head {
  headers: HeaderLine[];
  /** Chunks already read: they go out first, then the rest of the source. */
  chunks: Buffer[];
}

/** Read until the end of the header block (or `limit` bytes, or the end of input). */
export async function readHead(src: PipeSource, limit = 256 * 1024): Promise<Head> {
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const all = Buffer.concat(chunks);
    const end = headerEnd(all);
    if (end >= 0 || size >= limit) return { headers: parseHeaderBlock(all.subarray(0, end >= 0 ? end : limit)), chunks };
    const c = await src.next();
    if (!c) return { headers: parseHeaderBlock(all), chunks };
    chunks.push(c);
    size += c.length;
  }
}

function headerEnd(buf: Buffer): number {
  if (buf[0] === 0x0a || (buf[0] === 0x0d && buf[1] === 0x0a)) return 0;
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  return crlf < 0 ? lf : lf < 0 ? crlf : Math.min(crlf, lf);
}

/**
 * The message as chunks: what `readHead` took, then the rest of the source. Past `maxSize`
 * bytes it throws 5.3.4 (the caller drains the rest), so nothing larger leaves this process.
 */
export async function* messageChunks(src: PipeSource, head: Head, maxSize: number): AsyncGenerator<Buffer> {
  let size = 0;
  const take = (c: Buffer) => {
    size += c.length;
    if (size > maxSize) throw mailError('TOO_LARGE', `Message size exceeds the maximum of ${maxSize} bytes`);
    return c;
  };
  for (const c of head.chunks) yield take(c);
  for (let c = await src.next(); c; c = await src.next()) yield take(c);
}

/** The first address in a header value ('Jan <a@b>, c@d' → 'a@b'), or undefined. */
export function firstAddress(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const bracketed = /<([^<>\s]*)>/.exec(value);
  if (bracketed) return bracketed[1] || undefined;
  const bare = value.split(',')[0].trim();
  return bare || undefined;
}

/** A header's value by name (case-insensitive, first occurrence). */
export function headerValue(headers: HeaderLine[], name: string): string | undefined {
  const n = name.toLowerCase();
  return headers.find(([k]) => k.toLowerCase() === n)?.[1];
}

/**
 * The envelope recipient: `-l`, else `--recipient` (Postfix's ${original_recipient}), else the
 * X-Original-To header an MTA's local delivery adds, else 5.1.3: with no recipient, nothing
 * can be routed, and guessing from To: would route Bcc copies to the wrong place.
 */
export function chooseRecipient(opts: { list?: string; recipient?: string }, headers: HeaderLine[]): string {
  const r = opts.list || opts.recipient || firstAddress(headerValue(headers, 'x-original-to'));
  if (!r) throw mailError('NO_RECIPIENT', 'No recipient: give -l or --recipient, or add an X-Original-To header');
  return r;
}
