import { Readable } from 'node:stream';
import type { Envelope } from '../core/message.js';
import { renameForged } from './auth-results.js';

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
export async function withTrace(trace: string | null, raw: Readable, opts: { renameFor?: string } = {}): Promise<{ stream: Readable; length: number }> {
  if (!trace && !opts.renameFor) return { stream: raw, length: 0 };
  const source = opts.renameFor ? renamingForged(raw, opts.renameFor) : (raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
  const chunks = source;
  let first: IteratorResult<Buffer>;
  try {
    first = await chunks.next();
  } catch (err) {
    raw.destroy();
    throw err;
  }
  const lf = !first.done && bareLf(first.value);
  const head = Buffer.from(lf ? (trace ?? '').replace(/\r\n/g, '\n') : (trace ?? ''), 'utf8');
  async function* chain() {
    try {
      if (head.length) yield head;
      if (first.done) return;
      yield first.value;
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
    } finally {
      await chunks.return?.();
      raw.destroy();
    }
  }
  return { stream: Readable.from(chain(), { objectMode: false }), length: head.length };
}

/** Largest header block searched for forged Authentication-Results; past it the bytes go on as they are. */
const RENAME_HEAD_LIMIT = 1024 * 1024;

/**
 * The raw message with each Authentication-Results that claims `ours` renamed (renameForged):
 * the header block is gathered (up to RENAME_HEAD_LIMIT), rewritten, then the body streams on.
 * latin1 keeps every byte as it was.
 */
function renamingForged(raw: Readable, ours: string): AsyncIterator<Buffer> {
  async function* gen(): AsyncGenerator<Buffer> {
    let held: Buffer[] = [];
    let size = 0;
    let passing = false;
    for await (const c of raw as AsyncIterable<Buffer>) {
      if (passing) {
        yield c;
        continue;
      }
      held.push(c);
      size += c.length;
      const all = Buffer.concat(held);
      const end = endOfHead(all);
      if (end >= 0 || size > RENAME_HEAD_LIMIT) {
        const cut = end >= 0 ? end : 0;
        if (cut > 0) yield Buffer.from(renameForged(all.subarray(0, cut).toString('latin1'), ours), 'latin1');
        yield all.subarray(cut);
        held = [];
        passing = true;
      } else held = [all];
    }
    if (!passing && held.length) {
      const all = Buffer.concat(held);
      yield Buffer.from(renameForged(all.toString('latin1'), ours), 'latin1');
    }
  }
  return gen();
}

/** Index just past the blank line that ends the header block (its first line end included), or -1. */
function endOfHead(buf: Buffer): number {
  if (buf[0] === 0x0a || (buf[0] === 0x0d && buf[1] === 0x0a)) return 0;
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  const at = [crlf >= 0 ? crlf + 2 : -1, lf >= 0 ? lf + 1 : -1].filter((x) => x >= 0);
  return at.length ? Math.min(...at) : -1;
}

/** Whether the first line of `chunk` ends in a bare LF (no line end in it: CRLF is assumed). */
function bareLf(chunk: Buffer): boolean {
  const lf = chunk.indexOf(0x0a);
  return lf === 0 || (lf > 0 && chunk[lf - 1] !== 0x0d);
}
