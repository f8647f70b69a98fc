import type { Writable } from 'node:stream';

/**
 * Old fax clients end DATA with `CRLF SP . CRLF` instead of `CRLF . CRLF` (RFC 5321 §4.1.1.4).
 * The fax gateway Postroom replaces took that from the clients it was told to
 * (`nonstandard_data_terminator`); so does this, for the clients of
 * `smtp.nonstandardDataTerminator` only: for anyone else a second end-of-data form is exactly
 * what SMTP smuggling needs (two servers disagreeing on where a message ends).
 *
 * How: the bytes from the socket are rewritten before smtp-server's parser sees them, while it
 * is in DATA: `CRLF SP . CRLF` becomes `CRLF . CRLF`. A chunk ending in the middle of that form
 * (`CRLF SP`, `CRLF SP .`, `CRLF SP . CR`) is held back until the next one, which in DATA always
 * comes (the client has not ended its message yet); a chunk ending in `CRLF` is passed on at
 * once, since that may be the standard end, and the previous chunk's last bytes are kept to
 * see the form across the boundary. Bare LF forms are not taken: the line-ending guard refuses
 * them as ever.
 */
const FORM = Buffer.from('\r\n .\r\n');
const HELD = [Buffer.from('\r\n .\r'), Buffer.from('\r\n .'), Buffer.from('\r\n ')];

interface ParserLike extends Writable {
  _dataMode?: boolean;
}

/** Rewrite one chunk; `prev` is what was passed on last (its last 2 bytes matter). */
export function rewriteSpaceDot(prev: Buffer, chunk: Buffer): { out: Buffer; held: Buffer } {
  const s = Buffer.concat([prev.subarray(-2), chunk]);
  const off = s.length - chunk.length;
  const drop: number[] = [];
  for (let i = s.indexOf(FORM); i !== -1; i = s.indexOf(FORM, i + 1)) drop.push(i + 2 - off);
  let out = chunk;
  if (drop.length) {
    const parts: Buffer[] = [];
    let from = 0;
    for (const d of drop) {
      parts.push(chunk.subarray(from, d));
      from = d + 1;
    }
    parts.push(chunk.subarray(from));
    out = Buffer.concat(parts);
  }
  // The form may have begun in what was passed on already (`CRLF` then ` .`): hold this chunk's part of it.
  const seen = Buffer.concat([prev.subarray(-2), out]);
  const tail = HELD.find((h) => seen.length >= h.length && seen.subarray(seen.length - h.length).equals(h));
  if (!tail) return { out, held: Buffer.alloc(0) };
  const n = Math.min(tail.length, out.length);
  return { out: out.subarray(0, out.length - n), held: Buffer.from(out.subarray(out.length - n)) };
}

/** Make `parser` (smtp-server's SMTPStream) take `CRLF SP . CRLF` as the end of DATA while `enabled()`. */
export function acceptSpaceDotTerminator<P extends ParserLike>(parser: P, enabled: () => boolean): P {
  const write = parser.write.bind(parser) as (chunk: Buffer, cb?: (err?: Error | null) => void) => boolean;
  let held: Buffer = Buffer.alloc(0);
  let prev: Buffer = Buffer.alloc(0);
  (parser as unknown as { write: (chunk: Buffer, ...rest: unknown[]) => boolean }).write = (chunk: Buffer, ...rest: unknown[]) => {
    const cb = rest.find((r) => typeof r === 'function') as ((err?: Error | null) => void) | undefined;
    let data: Buffer = held.length ? Buffer.concat([held, chunk]) : chunk;
    held = Buffer.alloc(0);
    if (parser._dataMode && enabled()) {
      const r = rewriteSpaceDot(prev, data);
      data = r.out;
      held = r.held;
    }
    if (data.length) prev = Buffer.concat([prev, data]).subarray(-2);
    return write(data, cb);
  };
  return parser;
}
