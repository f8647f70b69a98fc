import type { Readable } from 'node:stream';
import { mailError } from '../core/errors.js';

const CR = 0x0d;
const LF = 0x0a;

/** What to do with a bare LF or bare CR inside DATA. */
export type BareLineEndings = 'reject' | 'normalize';

/**
 * Watches DATA for bare LF and bare CR (RFC 5321 §2.3.8: in SMTP only CRLF ends a line).
 *
 * Why: SMTP smuggling (SEC Consult, Dec 2023). A sender hides `\n.\n` or `\r.\r` followed by a
 * second `MAIL FROM:` inside DATA; a server that takes either as end-of-data sees two messages
 * where the relay in front saw one. smtp-server ends DATA only on CRLF.CRLF, so here the whole
 * payload stays ONE message, but kept as it is it would smuggle again when we forward it. So
 * by default the message is refused (550 5.5.2, nothing kept); `normalize` rewrites every bare
 * ending to CRLF instead.
 *
 * The common case (clean CRLF text) costs two native `indexOf` scans per chunk and no copy.
 */
export class LineEndingGuard {
  /** The last byte passed on was a CR whose LF has not been seen yet (it may start the next chunk). */
  private cr = false;

  constructor(private readonly mode: BareLineEndings) {}

  /** Check one chunk; returns it (rewritten in `normalize` mode). Throws BARE_LINE_ENDING in `reject` mode. */
  push(chunk: Buffer): Buffer {
    if (!chunk.length) return chunk;
    if (!this.hasBare(chunk)) {
      this.cr = chunk[chunk.length - 1] === CR;
      return chunk;
    }
    if (this.mode === 'reject') throw mailError('BARE_LINE_ENDING');
    return this.rewrite(chunk);
  }

  /** End of data: a CR left waiting is bare. Returns the bytes still owed (normalize), if any. */
  end(): Buffer | undefined {
    if (!this.cr) return undefined;
    this.cr = false;
    if (this.mode === 'reject') throw mailError('BARE_LINE_ENDING');
    return Buffer.from([LF]);
  }

  private hasBare(c: Buffer): boolean {
    if (this.cr && c[0] !== LF) return true;
    for (let p = c.indexOf(LF); p !== -1; p = c.indexOf(LF, p + 1)) {
      if (p === 0 ? !this.cr : c[p - 1] !== CR) return true;
    }
    // A CR as the last byte is judged by the next chunk (or by end()).
    for (let p = c.indexOf(CR); p !== -1 && p < c.length - 1; p = c.indexOf(CR, p + 1)) {
      if (c[p + 1] !== LF) return true;
    }
    return false;
  }

  private rewrite(c: Buffer): Buffer {
    const out = Buffer.allocUnsafe(c.length * 2 + 1);
    let o = 0;
    for (let i = 0; i < c.length; i++) {
      const b = c[i];
      if (this.cr) {
        this.cr = false;
        out[o++] = LF; // completes CRLF whether or not the LF came (a bare CR becomes CRLF)
        if (b === LF) continue;
      }
      if (b === CR) {
        out[o++] = CR;
        this.cr = true;
      } else if (b === LF) {
        out[o++] = CR;
        out[o++] = LF;
      } else {
        out[o++] = b;
      }
    }
    return out.subarray(0, o);
  }
}

/**
 * The DATA stream as the bytes intake keeps, checked by `guard`. Giving up early (intake throws
 * TOO_LARGE, or the guard throws) does NOT destroy the stream: smtp-server must go on reading
 * to the real end-of-data and only then reply, or the rest of the message would be read as
 * commands. The caller resumes the stream to discard what is left.
 */
export async function* messageBytes(stream: Readable, guard: LineEndingGuard): AsyncGenerator<Buffer> {
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) yield guard.push(chunk as Buffer);
  const tail = guard.end();
  if (tail) yield tail;
}
