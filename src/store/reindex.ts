import { SEARCH_BODY_CHARS } from '../core/message-search.js';
import type { BlobStore, SearchDoc } from './ports.js';
import type { Db } from './db.js';
import { relaxedTransaction } from './db.js';
import { searchDoc, searchIndexOf } from './search-index.js';

/** Messages per transaction: one commit per batch, short enough that intake never waits long behind it. */
const BATCH = 500;

export interface ReindexProgress {
  done: number;
  total: number;
}

/** The start of a text part, as the search indexes it (a UTF-8 blob: parsing stores text parts so). */
async function bodyStart(blobs: BlobStore, sha256: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Four bytes a character at most in UTF-8: enough bytes for SEARCH_BODY_CHARS characters.
  for await (const c of await blobs.open(sha256)) {
    chunks.push(c as Buffer);
    size += (c as Buffer).length;
    if (size >= SEARCH_BODY_CHARS * 4) break;
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, SEARCH_BODY_CHARS);
}

/**
 * Rebuild the search documents of every parsed message from its row and its text part, oldest
 * first, in batches (derived data: relaxed commits, like a parse save). Messages not parsed yet
 * get theirs when they are. Safe beside a running server: each batch replaces whole documents.
 */
export async function reindexMessages(db: Db, blobs: BlobStore, onProgress?: (p: ReindexProgress) => void): Promise<ReindexProgress> {
  const k = db.kysely;
  const total = Number((await k.selectFrom('messages').select((eb) => eb.fn.countAll<string | number>().as('n')).where('parsed_at', 'is not', null).executeTakeFirstOrThrow()).n);
  const index = searchIndexOf(k);
  let done = 0;
  let after = '';
  for (;;) {
    const rows = await k
      .selectFrom('messages')
      .select(['id', 'subject', 'from_addr', 'mail_from', 'rcpt_to', 'addresses'])
      .where('parsed_at', 'is not', null)
      .where('id', '>', after)
      .orderBy('id')
      .limit(BATCH)
      .execute();
    if (!rows.length) break;
    after = rows[rows.length - 1].id;
    const texts = await k
      .selectFrom('parts')
      .select(['message', 'sha256'])
      .where('message', 'in', rows.map((r) => r.id))
      .where('kind', '=', 'text')
      .execute();
    const textOf = new Map(texts.map((t) => [t.message, t.sha256]));
    const docs: SearchDoc[] = [];
    for (const r of rows) {
      const sha = textOf.get(r.id);
      // A blob gone missing (a restore without blobs) leaves the message findable by its headers.
      const body = sha ? await bodyStart(blobs, sha).catch(() => null) : null;
      docs.push(
        searchDoc({
          message: r.id,
          subject: r.subject,
          from: r.from_addr,
          mailFrom: r.mail_from,
          rcptTo: JSON.parse(r.rcpt_to) as string[],
          addresses: r.addresses ? (JSON.parse(r.addresses) as Record<string, unknown>) : null,
          body,
        }),
      );
    }
    await relaxedTransaction(k, (trx) => index.put(trx, docs));
    done += rows.length;
    onProgress?.({ done, total: Math.max(total, done) });
  }
  return { done, total: Math.max(total, done) };
}
