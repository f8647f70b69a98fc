import { Transform, type TransformCallback } from 'node:stream';

/** The Content-Transfer-Encoding names uuencoded bodies go by (none is registered; RFC 2045 §6.3 x- tokens). */
export const UU_ENCODINGS = new Set(['x-uuencode', 'uuencode', 'x-uue', 'uue']);

/** Longest line held while waiting for its end: a uuencoded line is at most 62 bytes. */
const MAX_LINE = 64 * 1024;

/** One uuencoded line to its bytes: the first character gives the count, each 4 characters 3 bytes. */
function decodeLine(line: Buffer): Buffer {
  const n = (line[0] - 0x20) & 0x3f;
  const out = Buffer.alloc(n);
  // Characters past the line's end count as ` ` (0), as binascii.a2b_uu reads them.
  const c = (i: number) => (i < line.length ? (line[i] - 0x20) & 0x3f : 0);
  for (let o = 0, i = 1; o < n; i += 4) {
    const [a, b, d, e] = [c(i), c(i + 1), c(i + 2), c(i + 3)];
    out[o++] = (a << 2) | (b >> 4);
    if (o < n) out[o++] = ((b & 0x0f) << 4) | (d >> 2);
    if (o < n) out[o++] = ((d & 0x03) << 6) | e;
  }
  return out;
}

/**
 * Streaming uudecode for bodies sent with `Content-Transfer-Encoding: x-uuencode` (Outlook
 * Express and old Mac mailers did): the bytes between `begin <mode> <name>` and `end`, as
 * Python's email decodes them. Without a `begin` line the body is passed on as it came (what
 * Python does too), so nothing is lost when the label is wrong.
 */
export class UuDecoder extends Transform {
  private line: Buffer[] = [];
  private lineBytes = 0;
  private state: 'before' | 'body' | 'after' = 'before';
  /** What came before a `begin` line, kept in case none comes. */
  private held: Buffer[] = [];

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    let at = 0;
    for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, at)) {
      this.hold(chunk.subarray(at, nl + 1));
      this.onLine(Buffer.concat(this.line, this.lineBytes));
      this.line = [];
      this.lineBytes = 0;
      at = nl + 1;
    }
    if (at < chunk.length) this.hold(chunk.subarray(at));
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.lineBytes) this.onLine(Buffer.concat(this.line, this.lineBytes));
    if (this.state === 'before') for (const b of this.held) this.push(b);
    done();
  }

  private hold(b: Buffer): void {
    if (this.lineBytes + b.length > MAX_LINE && this.state !== 'before') return;
    this.line.push(Buffer.from(b));
    this.lineBytes += b.length;
  }

  private onLine(raw: Buffer): void {
    if (this.state === 'before') {
      this.held.push(raw);
      if (raw.subarray(0, 6).toString('latin1') === 'begin ') {
        this.state = 'body';
        this.held = [];
      }
      return;
    }
    if (this.state === 'after') return;
    let end = raw.length;
    while (end > 0 && (raw[end - 1] === 0x0a || raw[end - 1] === 0x0d)) end--;
    const line = raw.subarray(0, end);
    if (line.subarray(0, 3).toString('latin1') === 'end') {
      this.state = 'after';
      return;
    }
    if (line.length) this.push(decodeLine(line));
  }
}
