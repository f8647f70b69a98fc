import type { FastifyReply, FastifyRequest } from 'fastify';
import { mailError } from '../core/errors.js';
import type { ByteRange } from '../store/ports.js';

/**
 * The one byte range a GET asks for (RFC 9110 §14.2: `bytes=FIRST-LAST`, `bytes=FIRST-`,
 * `bytes=-SUFFIX`), or undefined to send the whole representation: no Range header, a unit other
 * than bytes, several ranges (a multipart/byteranges reply is allowed to be skipped: §14.2 lets a
 * server ignore Range), or an If-Range (we keep no validator to compare it with). A range wholly
 * past the end: 416 with `Content-Range: bytes * /SIZE` (§15.5.17).
 */
export function requestedRange(request: FastifyRequest, reply: FastifyReply, size: number): ByteRange | undefined {
  const header = request.headers.range;
  if (request.method !== 'GET' || typeof header !== 'string' || request.headers['if-range'] !== undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    // The last N bytes.
    const n = Number(m[2]);
    if (n === 0) return unsatisfiable(reply, size);
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return undefined; // invalid: ignored (§14.1.1)
  }
  if (start >= size) return unsatisfiable(reply, size);
  return { start, end };
}

function unsatisfiable(reply: FastifyReply, size: number): never {
  reply.header('content-range', `bytes */${size}`);
  throw mailError('RANGE_NOT_SATISFIABLE', `The blob has ${size} bytes; the requested range starts past its end`);
}

/** Status and headers of a 206 for `range` of `size` bytes; the caller sets the rest. */
export function sendPartial(reply: FastifyReply, range: ByteRange, size: number): void {
  reply
    .code(206)
    .header('content-range', `bytes ${range.start}-${range.end}/${size}`)
    .header('content-length', String(range.end - range.start + 1));
}
