import type { Readable } from 'node:stream';
import { unsubscribeAddress } from './addresses.js';
import type { Group } from './store.js';

/**
 * The copy a member receives: the post as it arrived, with the list headers of RFC 2369 and
 * RFC 2919 in front and any the sender put there (or an upstream list added) taken out, so a
 * reader's "unsubscribe" and "reply to list" buttons act on this group.
 */

// Header fields this group owns on the copies it sends.
const OWNED = ['list-id', 'list-post', 'list-unsubscribe', 'list-unsubscribe-post', 'list-archive', 'list-help', 'list-subscribe', 'list-owner', 'precedence'];

/** RFC 2919 §3: the list identifier `<local.domain>` ('@' is not allowed in it). */
export function listId(g: Group): string {
  return `${g.address.replace('@', '.')}`;
}

// A display name inside a quoted-string: no CR/LF, no unescaped quotes or backslashes.
const quoted = (s: string) => `"${s.replace(/[\r\n]+/g, ' ').replace(/["\\]/g, '\\$&')}"`;

/** The header lines we add (CRLF-terminated) and the field names we drop from the original. */
export function listHeaders(g: Group, archiveUrl: string | undefined): { add: string; drop: Set<string> } {
  const lines = [
    `List-Id: ${quoted(g.name)} <${listId(g)}>`,
    `List-Post: <mailto:${g.address}>`,
    `List-Unsubscribe: <mailto:${unsubscribeAddress(g.address)}?subject=unsubscribe>`,
    ...(archiveUrl ? [`List-Archive: <${archiveUrl}>`] : []),
    'Precedence: list',
    ...(g.replyTo === 'group' ? [`Reply-To: <${g.address}>`] : []),
  ];
  const drop = new Set(OWNED);
  if (g.replyTo === 'group') drop.add('reply-to');
  return { add: lines.map((l) => `${l}\r\n`).join(''), drop };
}

// Past this the header block is not rewritten (only prefixed): a header this large is hostile.
const MAX_HEADER = 1024 * 1024;

/** End of the header block (index of the blank line's first byte), or -1. */
function headerEnd(buf: Buffer): number {
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  if (crlf < 0) return lf < 0 ? -1 : lf + 1;
  return lf < 0 ? crlf + 2 : Math.min(crlf + 2, lf + 1);
}

/** Remove the fields named in `drop` (with their continuation lines) from a header block. */
export function dropFields(block: Buffer, drop: Set<string>): Buffer {
  const text = block.toString('latin1');
  const fields = text.split(/(?<=\n)(?![ \t])/);
  const kept = fields.filter((f) => {
    const colon = f.indexOf(':');
    return colon <= 0 || !drop.has(f.slice(0, colon).trim().toLowerCase());
  });
  return Buffer.from(kept.join(''), 'latin1');
}

/** The message with `add` in front and the `drop` fields taken out of its header; the body streams as it is. */
export async function* relayCopy(raw: Readable, add: string, drop: Set<string>): AsyncGenerator<Buffer> {
  yield Buffer.from(add, 'latin1');
  let head = Buffer.alloc(0);
  let inHeader = true;
  for await (const chunk of raw as AsyncIterable<Buffer>) {
    if (!inHeader) {
      yield chunk;
      continue;
    }
    head = Buffer.concat([head, chunk]);
    const end = headerEnd(head);
    if (end >= 0) {
      inHeader = false;
      yield dropFields(head.subarray(0, end), drop);
      yield head.subarray(end);
    } else if (head.length > MAX_HEADER) {
      inHeader = false;
      yield head;
    }
  }
  // No blank line at all: the whole message is header.
  if (inHeader) yield dropFields(head, drop);
}
