import { createHash, type Hash } from 'node:crypto';

/**
 * Header fields a relay adds or rewrites on its way (RFC 5321 §4.4 trace fields, what MTAs
 * prepend at delivery, and verdicts a hop stamps). One message that reaches us through two
 * relays differs in these only; everything else is the sender's own.
 */
export const TRACE_FIELDS: ReadonlySet<string> = new Set([
  'received',
  'return-path',
  'x-original-to',
  'delivered-to',
  'envelope-to',
  'x-envelope-to',
  'x-received',
  'authentication-results',
  'arc-seal',
  'arc-message-signature',
  'arc-authentication-results',
  'x-postroom-trace',
]);

/**
 * sha256 of a message without its trace fields: the header block minus TRACE_FIELDS (anywhere
 * in it, folded lines with their field), then the body, with CRLF and bare LF read alike (a pipe
 * hands LF, SMTP CRLF). Fed chunk by chunk while intake streams the message; holds at most the
 * header block (up to `headerLimit`; past it the rest is hashed as body bytes).
 */
export class ContentFingerprint {
  private readonly hash: Hash = createHash('sha256');
  private head: Buffer[] = [];
  private headBytes = 0;
  private inBody = false;
  /** The previous chunk ended in CR: a LF starting the next one completes a CRLF. */
  private pendingCr = false;

  constructor(private readonly headerLimit = 256 * 1024) {}

  push(chunk: Uint8Array): void {
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.inBody) return this.body(buf);
    this.head.push(buf);
    this.headBytes += buf.length;
    buf = this.head.length === 1 ? buf : Buffer.concat(this.head);
    this.head = [buf];
    const end = blankLine(buf);
    if (end < 0 && this.headBytes < this.headerLimit) return;
    const cut = end < 0 ? buf.length : end;
    this.fields(buf.subarray(0, cut));
    this.hash.update('\n');
    this.inBody = true;
    this.head = [];
    this.body(buf.subarray(cut));
  }

  /** The hex digest; call once, after the last chunk. */
  digest(): string {
    if (!this.inBody) {
      // No blank line: all header (or an empty message).
      this.fields(this.head.length ? Buffer.concat(this.head) : Buffer.alloc(0));
      this.hash.update('\n');
    }
    if (this.pendingCr) this.hash.update('\r');
    return this.hash.digest('hex');
  }

  private fields(block: Buffer): void {
    const text = block.toString('latin1');
    // A field is a line and its continuation lines (RFC 5322 §2.2.3).
    for (const field of text.split(/\r?\n(?![ \t])/)) {
      if (!field) continue;
      const colon = field.indexOf(':');
      const name = colon > 0 ? field.slice(0, colon).trim().toLowerCase() : '';
      if (TRACE_FIELDS.has(name)) continue;
      this.hash.update(Buffer.from(field.replace(/\r\n/g, '\n') + '\n', 'latin1'));
    }
  }

  /** Body bytes with every CRLF hashed as LF, across chunk boundaries too. */
  private body(buf: Buffer): void {
    let from = 0;
    if (this.pendingCr) {
      this.pendingCr = false;
      if (buf[0] !== 0x0a) this.hash.update('\r');
    }
    for (let i = buf.indexOf(0x0d); i >= 0; i = buf.indexOf(0x0d, i + 1)) {
      if (i === buf.length - 1) {
        this.hash.update(buf.subarray(from, i));
        this.pendingCr = true;
        return;
      }
      if (buf[i + 1] === 0x0a) {
        this.hash.update(buf.subarray(from, i));
        from = i + 1;
      }
    }
    this.hash.update(buf.subarray(from));
  }
}

/** Index where the header block ends (before its blank line), or -1. */
function blankLine(buf: Buffer): number {
  if (buf[0] === 0x0a || (buf[0] === 0x0d && buf[1] === 0x0a)) return 0;
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  const mixed = buf.indexOf('\n\r\n');
  const found = [crlf, lf, mixed].filter((i) => i >= 0);
  return found.length ? Math.min(...found) : -1;
}
