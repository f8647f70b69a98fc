import { Readable } from 'node:stream';
import type { Envelope } from '../core/message.js';

/** RFC 5322 date-time, e.g. 'Sat, 21 Nov 2026 06:01:02 +0000'. */
export function rfc5322Date(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${p(d.getUTCDate())} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(
    d.getUTCHours(),
  )}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

// Only characters that cannot break out of the header line or its comment.
const clean = (s: string) => s.replace(/[^\x21-\x7e]/g, '').replace(/[()\\]/g, '').slice(0, 255);

/**
 * The Received: trace header we prepend (RFC 5321 §4.4), CRLF-terminated. `installation` goes
 * into the comment after our name, `(Postroom <id>)`: how the loop check knows our own passes.
 */
export function receivedHeader(env: Envelope, id: string, byHost: string, installation?: string): string {
  const from = env.helo || env.clientHostname || env.clientIp;
  const fromPart = from
    ? `from ${clean(from)}${env.clientIp ? ` (${env.clientHostname ? `${clean(env.clientHostname)} ` : ''}[${clean(env.clientIp)}])` : ''}\r\n\t`
    : '';
  // RFC 3848 protocol names: ESMTP, ESMTPS (TLS), ESMTPA (AUTH), ESMTPSA.
  let proto = env.ingress === 'smtp' ? 'ESMTP' : env.ingress.toUpperCase();
  if (env.ingress === 'smtp' && (env.tls || env.authUser)) proto += `${env.tls ? 'S' : ''}${env.authUser ? 'A' : ''}`;
  // "for" names the recipient only when there is one: listing all would reveal Bcc recipients.
  const forPart = env.rcptTo.length === 1 ? `\r\n\tfor <${clean(env.rcptTo[0])}>` : '';
  return `Received: ${fromPart}by ${clean(byHost)} (Postroom${installation ? ` ${clean(installation)}` : ''}) with ${proto} id ${id}${forPart};\r\n\t${rfc5322Date(env.receivedAt)}\r\n`;
}

/**
 * A kept message as it travels on (API /raw, forwards, group relays): our trace header, then
 * the bytes received, unchanged. The header takes the message's own line ending: mail piped in
 * by an MTA arrives with bare LF (Postfix and Exim hand it over so), and a CRLF header on top
 * would leave one message with two conventions. Reads the first chunk to see which; `length`
 * is the header's size as sent. Destroying the result destroys `raw`.
 */
export async function withTrace(trace: string | null, raw: Readable): Promise<{ stream: Readable; length: number }> {
  if (!trace) return { stream: raw, length: 0 };
  const chunks = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let first: IteratorResult<Buffer>;
  try {
    first = await chunks.next();
  } catch (err) {
    raw.destroy();
    throw err;
  }
  const lf = !first.done && bareLf(first.value);
  const head = Buffer.from(lf ? trace.replace(/\r\n/g, '\n') : trace, 'utf8');
  async function* chain() {
    try {
      yield head;
      if (first.done) return;
      yield first.value;
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
    } finally {
      await chunks.return?.();
    }
  }
  return { stream: Readable.from(chain(), { objectMode: false }), length: head.length };
}

/** Whether the first line of `chunk` ends in a bare LF (no line end in it: CRLF is assumed). */
function bareLf(chunk: Buffer): boolean {
  const lf = chunk.indexOf(0x0a);
  return lf === 0 || (lf > 0 && chunk[lf - 1] !== 0x0d);
}
