import { mailError } from '../../core/errors.js';

/**
 * The mbox variants (the "From_" line family, see https://www.loc.gov/preservation/digital/formats/fdd/fdd000383.shtml
 * and RFC 4155, which names the family and leaves the quoting to each one):
 * - mboxrd: every line matching /^>*From / gained one '>' on writing; reading takes one off.
 *   Reversible, so it is what `postroom export` writes.
 * - mboxo: only /^From / gained a '>' on writing; reading takes one off /^>From / (a body line
 *   that was '>From ' already comes back as 'From ': the variant's known loss).
 * - mboxcl2: nothing is quoted; Content-Length: says where the body ends (mutt's format).
 */
export type MboxVariant = 'mboxrd' | 'mboxo' | 'mboxcl2';
export const MBOX_VARIANTS: readonly MboxVariant[] = ['mboxrd', 'mboxo', 'mboxcl2'];

const NL = 0x0a;
const GT = 0x3e;
const FROM = Buffer.from('From ');
const NL_FROM = Buffer.from('\nFrom ');
const NL_GT = Buffer.from('\n>');
/** A line longer than this without a line break is passed on in pieces (bounded memory). */
const MAX_LINE = 1024 * 1024;

/** One message as the reader finds it; `body` must be read to its end (or left) before `next()`. */
export interface MboxMessage {
  /** Byte offset of its From_ line in the file. */
  offset: number;
  /** The From_ line after 'From ', without its line ending: "sender date". */
  fromLine: string;
  /** The message, unquoted, without the From_ line and the blank line before the next one. */
  body: AsyncGenerator<Buffer>;
}

/** The envelope sender a From_ line names ('From alice@example.org Mon Dec  7 …'); '' for MAILER-DAEMON and <>. */
export function fromLineSender(fromLine: string): string | undefined {
  const first = fromLine.trim().split(/\s+/)[0];
  if (!first) return undefined;
  if (first === 'MAILER-DAEMON' || first === '<>' || first === '-') return '';
  const bare = first.replace(/^<(.*)>$/, '$1');
  return /^[^\s<>@]+@[^\s<>@]+$/.test(bare) ? bare : undefined;
}

/**
 * The number of '>' before "From " at `i` in `buf` when the line at `i` is a quoted From_ line
 * (/^>+From /), else 0. `i` is a line start.
 */
function quoteDepth(buf: Buffer, i: number): number {
  let j = i;
  while (j < buf.length && buf[j] === GT) j++;
  if (j === i || j + FROM.length > buf.length) return 0;
  return buf.compare(FROM, 0, FROM.length, j, j + FROM.length) === 0 ? j - i : 0;
}

/**
 * Reads an mbox stream message by message, never holding more than a few chunks and one line
 * (up to MAX_LINE) in memory, so a file of any size streams through. Like Python's `mailbox.mbox`,
 * any line starting "From " starts a message (quoting protects body lines), and one blank line
 * before it belongs to the format, not to the message before.
 */
export class MboxReader {
  private buf: Buffer = Buffer.alloc(0);
  /** File offset of buf[0]. */
  private pos: number;
  private eof = false;
  /** In a message's body: buf[0] is '\n', the end of the line before (not yet handed on when `pendingNl`). */
  private inBody = false;
  private pendingNl = false;
  /** The byte before buf[0] was '\n': the line buf[0] ends is blank. */
  private blankBefore = false;
  /** buf[0] is inside a long line (not a line start). */
  private midLine = false;
  /** mboxcl2: body bytes left by Content-Length; undefined: scan for the next From_ line. */
  private left: number | undefined;
  private started = false;

  constructor(
    private readonly src: AsyncIterator<Buffer>,
    private readonly variant: MboxVariant,
    /** File offset the source starts at (a resumed import reads from a From_ line further on). */
    start = 0,
    /** The header block limit: a mboxcl2 header block is read whole to find Content-Length. */
    private readonly headerLimit = 256 * 1024,
  ) {
    this.pos = start;
  }

  /** Offset in the file of the next byte not yet consumed. */
  get offset(): number {
    return this.pos;
  }

  private async more(): Promise<boolean> {
    if (this.eof) return false;
    const r = await this.src.next();
    if (r.done) {
      this.eof = true;
      return false;
    }
    const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    return true;
  }

  private consume(n: number): void {
    this.buf = this.buf.subarray(n);
    this.pos += n;
  }

  /** The next message, or null at the end of the file. Throws DATAERR when the file is no mbox. */
  async next(): Promise<MboxMessage | null> {
    // Whatever the caller left of the message before is skipped.
    while (this.inBody) await this.piece();
    if (!this.started) {
      this.started = true;
      while (this.buf.length < FROM.length && (await this.more()));
      if (!this.buf.length) return null;
      if (this.buf.length < FROM.length || this.buf.compare(FROM, 0, FROM.length, 0, FROM.length) !== 0) {
        throw mailError('BAD_MAILBOX', `Not an mbox: it does not start with a "From " line (at byte ${this.pos})`);
      }
    }
    if (!this.buf.length && !(await this.more())) return null;
    // Here buf starts with "From " (the reader stops at each From_ line).
    let nl = this.buf.indexOf(NL);
    while (nl < 0 && this.buf.length < MAX_LINE && (await this.more())) nl = this.buf.indexOf(NL);
    if (nl < 0) throw mailError('BAD_MAILBOX', `From_ line at byte ${this.pos} has no end`);
    const offset = this.pos;
    const fromLine = this.buf.subarray(FROM.length, nl).toString('latin1').replace(/\r$/, '');
    // The From_ line's own '\n' stays as buf[0]: the body starts at a line start.
    this.consume(nl);
    this.inBody = true;
    this.pendingNl = false;
    this.blankBefore = false;
    this.midLine = false;
    this.left = undefined;
    if (this.variant === 'mboxcl2') this.left = await this.contentLength();
    const self = this;
    async function* body(): AsyncGenerator<Buffer> {
      for (;;) {
        const p = await self.piece();
        if (!p) return;
        if (p.length) yield p;
      }
    }
    return { offset, fromLine, body: body() };
  }

  /**
   * mboxcl2: the body length Content-Length gives, counted from the end of the header block,
   * as the header block plus that; undefined when the header is missing or unreadable (the
   * message then ends at the next From_ line).
   */
  private async contentLength(): Promise<number | undefined> {
    for (;;) {
      const end = headerBlockEnd(this.buf, 1);
      if (end >= 0) {
        const head = this.buf.subarray(1, end).toString('latin1');
        const m = /^content-length:[ \t]*(\d{1,15})[ \t]*\r?$/im.exec(head);
        // The header block (and its blank line) from buf[1], then the body.
        return m ? end - 1 + Number(m[1]) : undefined;
      }
      if (this.buf.length > this.headerLimit || !(await this.more())) return undefined;
    }
  }

  /** The next piece of the current body; null at its end (the reader then stands at a From_ line or EOF). */
  private async piece(): Promise<Buffer | null> {
    if (!this.inBody) return null;
    if (this.left !== undefined) return this.counted();
    for (;;) {
      if (this.midLine) {
        const nl = this.buf.indexOf(NL);
        if (nl < 0) {
          if (this.buf.length) {
            const out = this.buf;
            this.consume(this.buf.length);
            return out;
          }
          if (!(await this.more())) return this.end(0);
          continue;
        }
        const out = this.buf.subarray(0, nl);
        this.consume(nl);
        this.midLine = false;
        this.pendingNl = true;
        this.blankBefore = false;
        if (out.length) return out;
        continue;
      }
      // buf[0] is '\n'. Lines are decided only when whole (up to the last '\n' in buf), so a
      // "From " split across two chunks is never missed; at the end of the file, all is whole.
      let limit = this.buf.lastIndexOf(NL);
      if (limit <= 0 && !this.eof) {
        if (this.buf.length < MAX_LINE + 1 && (await this.more())) continue;
        if (!this.eof) limit = -1; // one line longer than MAX_LINE: decide it on its start
      }
      if (this.eof) limit = this.buf.length;
      const out: Buffer[] = [];
      let seg = this.pendingNl ? 0 : 1;
      let i = 0;
      const stopAt = limit < 0 ? 1 : limit;
      while (i < stopAt) {
        // i is a '\n' (a line starts at i + 1)
        const line = i + 1;
        if (this.buf.length >= line + FROM.length && this.buf.compare(FROM, 0, FROM.length, line, line + FROM.length) === 0) {
          // The next message: one blank line before it is the separator.
          const blank = i > 0 ? this.buf[i - 1] === NL : this.blankBefore;
          const cut = blank ? i : i + 1;
          if (cut > seg) out.push(this.buf.subarray(seg, cut));
          this.consume(line);
          this.inBody = false;
          return Buffer.concat(out);
        }
        const depth = this.buf[line] === GT ? quoteDepth(this.buf, line) : 0;
        if (depth && (this.variant === 'mboxrd' || (this.variant === 'mboxo' && depth === 1))) {
          out.push(this.buf.subarray(seg, line));
          seg = line + 1;
        }
        const a = this.buf.indexOf(NL_FROM, line);
        const b = this.buf.indexOf(NL_GT, line);
        const n = a < 0 ? b : b < 0 ? a : Math.min(a, b);
        if (n < 0 || n >= stopAt) break;
        i = n;
      }
      if (limit < 0) {
        // A line longer than MAX_LINE: its start is decided above; hand it all on.
        if (this.buf.length > seg) out.push(this.buf.subarray(seg));
        this.consume(this.buf.length);
        this.midLine = true;
        return Buffer.concat(out);
      }
      if (this.eof) {
        // The end of the file ends the message; a last blank line is the format's, as before a From_ line.
        let cut = this.buf.length;
        if (cut >= 1 && this.buf[cut - 1] === NL && (cut >= 2 ? this.buf[cut - 2] === NL : this.blankBefore)) cut--;
        if (cut > seg) out.push(this.buf.subarray(seg, cut));
        this.consume(this.buf.length);
        this.inBody = false;
        return Buffer.concat(out);
      }
      // Hand on everything up to the last '\n', which stays as buf[0].
      if (limit > seg) out.push(this.buf.subarray(seg, limit));
      this.blankBefore = this.buf[limit - 1] === NL;
      this.consume(limit);
      this.pendingNl = true;
      const data = out.length === 1 ? detach(out[0]) : Buffer.concat(out);
      if (data.length) return data;
    }
  }

  /** mboxcl2 with Content-Length: exactly that many bytes, then blank lines up to the next From_ line. */
  private async counted(): Promise<Buffer | null> {
    const left = this.left!;
    if (left > 0) {
      // buf[0] is the From_ line's '\n'.
      if (this.buf.length <= 1 && !(await this.more())) {
        throw mailError('BAD_MAILBOX', `Content-Length runs past the end of the file (message before byte ${this.pos})`);
      }
      const n = Math.min(left, this.buf.length - 1);
      const out = detach(this.buf.subarray(1, 1 + n));
      this.left = left - n;
      // The last byte handed on stays as buf[0], the placeholder the body is read after.
      this.consume(n);
      return out;
    }
    // After the body: blank lines, then "From " or the end of the file.
    for (;;) {
      let i = 1;
      while (i < this.buf.length && (this.buf[i] === NL || (this.buf[i] === 0x0d && this.buf[i + 1] === NL))) i++;
      if (i + FROM.length <= this.buf.length || this.eof) {
        if (i >= this.buf.length && this.eof) {
          this.consume(this.buf.length);
          this.inBody = false;
          this.left = undefined;
          return null;
        }
        if (i + FROM.length > this.buf.length || this.buf.compare(FROM, 0, FROM.length, i, i + FROM.length) !== 0) {
          throw mailError('BAD_MAILBOX', `Content-Length does not end at a From_ line (byte ${this.pos + i}); try --format mboxrd`);
        }
        this.consume(i);
        this.inBody = false;
        this.left = undefined;
        return null;
      }
      if (!(await this.more())) continue;
    }
  }

  private end(_n: number): null {
    this.inBody = false;
    return null;
  }
}

/**
 * A small piece copied out of the chunk it was cut from: a message waiting for its commit
 * would otherwise keep the whole 1 MiB read chunk alive, and 64 of them in flight 64 MiB.
 */
function detach(b: Buffer): Buffer {
  return b.length < 64 * 1024 && b.buffer.byteLength > 4 * b.length ? Buffer.from(b) : b;
}

/** Index of the blank line that ends the header block starting at `from` (its end: body start), or -1. */
function headerBlockEnd(buf: Buffer, from: number): number {
  if (buf[from] === NL) return from + 1;
  if (buf[from] === 0x0d && buf[from + 1] === NL) return from + 2;
  const lf = buf.indexOf('\n\n', from);
  const crlf = buf.indexOf('\n\r\n', from);
  if (lf < 0 && crlf < 0) return -1;
  if (crlf < 0 || (lf >= 0 && lf < crlf)) return lf + 2;
  return crlf + 3;
}

/**
 * The variant of an mbox from its first bytes: mboxcl2 when the first message has a
 * Content-Length that ends exactly at the next From_ line (or at the end of the file, when
 * `size` is that of the whole file); otherwise mboxrd, which reads mboxo files the same
 * except for body lines that were '>From ' before quoting.
 */
export function detectVariant(head: Buffer, size: number): MboxVariant {
  if (head.length < FROM.length || head.compare(FROM, 0, FROM.length, 0, FROM.length) !== 0) return 'mboxrd';
  const nl = head.indexOf(NL);
  if (nl < 0) return 'mboxrd';
  const end = headerBlockEnd(head, nl + 1);
  if (end < 0) return 'mboxrd';
  const m = /^content-length:[ \t]*(\d{1,15})[ \t]*\r?$/im.exec(head.subarray(nl + 1, end).toString('latin1'));
  if (!m) return 'mboxrd';
  let at = end + Number(m[1]);
  if (at > size) return 'mboxrd';
  while (at < head.length && head[at] === NL) at++;
  if (at >= size) return 'mboxcl2';
  if (at + FROM.length > head.length) return 'mboxrd';
  return head.compare(FROM, 0, FROM.length, at, at + FROM.length) === 0 ? 'mboxcl2' : 'mboxrd';
}

/** asctime(3) of a date in UTC, as From_ lines carry it: 'Mon Dec  7 17:14:15 2026'. */
export function asctime(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]} ${months[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(
    d.getUTCSeconds(),
  )} ${d.getUTCFullYear()}`;
}

/** A From_ line for a message (with its '\n'): the envelope sender (MAILER-DAEMON for <>) and the date in asctime form. */
export function fromLineOf(mailFrom: string, date: Date): string {
  const sender = mailFrom && /^[\x21-\x7e]+$/.test(mailFrom) ? mailFrom : 'MAILER-DAEMON';
  return `From ${sender} ${asctime(date)}\n`;
}

/**
 * One message as mboxrd writes it, streamed: every line matching /^>*From / gains a '>', a
 * message not ending in '\n' gets one (mbox cannot tell the difference: such a message comes
 * back with it), and one blank line follows, before the next From_ line.
 */
export async function* mboxrdQuote(raw: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  // `carry`: the start of a line not yet decided (it might yet be ">>From ").
  let carry: Buffer = Buffer.alloc(0);
  let atLineStart = true;
  let last = NL;
  for await (const c of raw) {
    const chunk = carry.length ? Buffer.concat([carry, Buffer.from(c)]) : Buffer.from(c);
    carry = Buffer.alloc(0);
    const out: Buffer[] = [];
    let seg = 0;
    let i = atLineStart ? 0 : chunk.indexOf(NL) + 1;
    if (!atLineStart && i === 0) {
      out.push(chunk);
      last = chunk[chunk.length - 1] ?? last;
      yield Buffer.concat(out);
      continue;
    }
    atLineStart = true;
    while (i < chunk.length) {
      // i is a line start. Undecided when it is only '>'s so far, or a prefix of ">*From ".
      let j = i;
      while (j < chunk.length && chunk[j] === GT) j++;
      const rest = chunk.length - j;
      if (rest < FROM.length && chunk.subarray(j).equals(FROM.subarray(0, rest))) {
        carry = chunk.subarray(i);
        break;
      }
      if (quoteDepth(chunk, i) || (i + FROM.length <= chunk.length && chunk.compare(FROM, 0, FROM.length, i, i + FROM.length) === 0)) {
        out.push(chunk.subarray(seg, i), Buffer.from('>'));
        seg = i;
      }
      const nl = chunk.indexOf(NL, i);
      if (nl < 0) {
        i = chunk.length;
        atLineStart = false;
        break;
      }
      i = nl + 1;
      atLineStart = true;
    }
    const upTo = carry.length ? chunk.length - carry.length : chunk.length;
    if (upTo > seg) out.push(chunk.subarray(seg, upTo));
    const data = Buffer.concat(out);
    if (data.length) {
      last = data[data.length - 1];
      yield data;
    }
  }
  if (carry.length) {
    yield carry;
    last = carry[carry.length - 1];
  }
  yield Buffer.from(last === NL ? '\n' : '\n\n');
}
