import { Transform, type TransformCallback } from 'node:stream';

/** Value of each base64 alphabet byte (RFC 4648 §4), -1 for every other byte. */
const SEXTET = new Int8Array(256).fill(-1);
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
for (let i = 0; i < ALPHABET.length; i++) SEXTET[ALPHABET.charCodeAt(i)] = i;
const PAD = 0x3d; // '='

/**
 * Streaming base64 decoder (Content-Transfer-Encoding: base64) that works on bytes only.
 *
 * Why not mailparser's own (libbase64): it turns every chunk into two or three JavaScript
 * strings (the chunk, the line breaks stripped, the joined remainder) before decoding them. A
 * 200 MiB attachment then puts ~400 MiB of strings through the JS heap, large ones straight
 * into the large-object space that only a full GC frees, and the frequent collections promote
 * the chunks in flight to the old generation: the heap and the dead buffers grew by ~60 MiB
 * while such a message was parsed. Here each chunk costs one output buffer and nothing else.
 *
 * Decoding rules are libbase64's (and RFC 2045 §6.8's): bytes outside the alphabet (line
 * breaks, spaces, junk) are skipped; `=` ends a segment, and the next segment starts a fresh
 * quartet (mail where every line was padded on its own); a segment's last 2 or 3 characters
 * give 1 or 2 bytes, a lone last character none.
 */
export class Base64Decoder extends Transform {
  /** Bits of the quartet being read, and how many of its characters have been seen. */
  private bits = 0;
  private count = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const out = Buffer.allocUnsafe(Math.floor((this.count + chunk.length) / 4) * 3 + 2);
    let o = 0;
    let bits = this.bits;
    let count = this.count;
    const len = chunk.length;
    let i = 0;
    while (i < len) {
      // Whole quartets of alphabet bytes (the bulk of every line) four at a time.
      if (count === 0) {
        while (i + 4 <= len) {
          const a = SEXTET[chunk[i]];
          const b = SEXTET[chunk[i + 1]];
          const c = SEXTET[chunk[i + 2]];
          const d = SEXTET[chunk[i + 3]];
          if ((a | b | c | d) < 0) break;
          out[o++] = (a << 2) | (b >> 4);
          out[o++] = ((b & 0x0f) << 4) | (c >> 2);
          out[o++] = ((c & 0x03) << 6) | d;
          i += 4;
        }
        if (i >= len) break;
      }
      const byte = chunk[i++];
      const v = SEXTET[byte];
      if (v >= 0) {
        bits = (bits << 6) | v;
        if (++count === 4) {
          out[o++] = bits >> 16;
          out[o++] = (bits >> 8) & 0xff;
          out[o++] = bits & 0xff;
          bits = 0;
          count = 0;
        }
      } else if (byte === PAD && count) {
        o = this.partial(out, o, bits, count);
        bits = 0;
        count = 0;
      }
    }
    this.bits = bits;
    this.count = count;
    if (o) this.push(out.subarray(0, o));
    done();
  }

  override _flush(done: TransformCallback): void {
    const out = Buffer.alloc(2);
    const o = this.partial(out, 0, this.bits, this.count);
    if (o) this.push(out.subarray(0, o));
    done();
  }

  /** The bytes of an incomplete quartet (2 characters: 1 byte, 3: 2 bytes, 1: none). */
  private partial(out: Buffer, o: number, bits: number, count: number): number {
    if (count === 2) out[o++] = (bits >> 4) & 0xff;
    else if (count === 3) {
      out[o++] = (bits >> 10) & 0xff;
      out[o++] = (bits >> 2) & 0xff;
    }
    return o;
  }
}
