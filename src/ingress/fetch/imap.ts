import type { ImapFlow } from 'imapflow';
import { mailError, type MailError } from '../../core/errors.js';
import type { Accept } from '../../intake/accept.js';
import type { Db } from '../../store/db.js';
import type { Logger } from '../../telemetry/log.js';
import { imapFailure } from '../../net/remote-answer.js';
import type { ImapSettings } from './imap-session.js';
import { keepFetched, type FetchOrigin, type KeepOutcome } from './keep.js';
import { advance, linkFetched, resetUidValidity } from './state.js';

/**
 * One pass over an IMAP folder: find the messages not yet dealt with, keep each through
 * intake, and only then (DESIGN promise 1) move or delete it on the server. The order per
 * batch is: keep (fsync + commit) → link → move/delete → advance the cursor. A crash anywhere
 * leaves a state the next pass heals: kept but not moved ⇒ fetched again, intake's dedup key
 * (Message-ID or folder scope, bytes, recipient) returns the kept message, then it is moved.
 */

/** What to do with a folder's mail, and where the pass got to. */
export interface ImapJob {
  settings: ImapSettings;
  path: string;
  origin: FetchOrigin;
  deleteOnServer: boolean;
  moveOnSuccess: string | null;
  moveOnFailure: string | null;
  /**
   * Watcher mode: UIDs above `lastUid` under `uidValidity` are new (kept in mail_folders).
   * Without it (the one-shot command), new means not \Seen, and kept mail is flagged \Seen.
   */
  cursor?: { folderId: string; accountId: string; uidValidity: string | null; lastUid: number };
  maxSize: number;
  /** Messages per round: kept concurrently (one group commit), then moved with one command. */
  batch: number;
  /** Recorded in mail_links for each kept message (needs deps.db): account, folder and the route it is given. */
  link?: { account: string; folder: string | null; route: string | null; deliver?: string | null };
}

export interface PassResult {
  kept: number;
  duplicates: number;
  refused: number;
}

export interface PassDeps {
  accept: Accept;
  log: Logger;
  /** Needed in watcher mode (cursor, links). */
  db?: Db;
  /** Told about every message's outcome (metrics). */
  onOutcome?: (o: KeepOutcome) => void;
}

/** Bodies up to this size are fetched several at once into memory; larger ones are streamed one by one. */
const SMALL = 256 * 1024;

/** imapflow answers a refused STORE/MOVE/EXPUNGE with `false` rather than an error: make it one. */
function must(ok: unknown, what: string, host: string): void {
  if (!ok) throw mailError('TARGET_TEMPFAIL', `${host}: ${what} failed; the messages stay where they are and are dealt with at the next pass`);
}

/** Move `uids` to `dest`; a refused move is tried once more after creating `dest` (RFC 9051 TRYCREATE). */
async function moveTo(client: ImapFlow, uids: number[], dest: string, host: string): Promise<void> {
  if (!uids.length) return;
  const range = uids.join(',');
  if (await client.messageMove(range, dest, { uid: true })) return;
  await client.mailboxCreate(dest).catch(() => {});
  must(await client.messageMove(range, dest, { uid: true }), `moving to ${dest}`, host);
}

/**
 * Keep one message, then link it to its folder at once: planning reads the link for the
 * folder's route, and starts as soon as the parser is done with the message.
 */
async function keepOne(job: ImapJob, deps: PassDeps, raw: AsyncIterable<Uint8Array>, uid: number): Promise<KeepOutcome> {
  const o = await keepFetched(deps.accept, job.origin, raw, { maxSize: job.maxSize });
  if (o.kind === 'kept' && deps.db && job.link) await linkFetched(deps.db, [{ message: o.message.id, ...job.link, uid }]);
  return o;
}

/** Keep the messages `uids` (ascending); outcomes by UID. A UID the server no longer has is absent. */
async function keepBatch(client: ImapFlow, job: ImapJob, deps: PassDeps, uids: number[]): Promise<Map<number, KeepOutcome>> {
  const sizes = new Map<number, number>();
  for (const m of await client.fetchAll(uids.join(','), { uid: true, size: true }, { uid: true })) sizes.set(m.uid, m.size ?? 0);
  const small = uids.filter((u) => sizes.has(u) && (sizes.get(u) ?? 0) <= SMALL);
  const large = uids.filter((u) => sizes.has(u) && (sizes.get(u) ?? 0) > SMALL);
  const out = new Map<number, KeepOutcome>();
  const keeping: Promise<void>[] = [];
  if (small.length) {
    // BODY.PEEK[]: fetching must not set \Seen (RFC 9051 §6.4.5); the bytes arrive as sent.
    for (const m of await client.fetchAll(small.join(','), { uid: true, source: true }, { uid: true })) {
      if (!m.source) continue;
      const src = m.source;
      keeping.push(keepOne(job, deps, (async function* () { yield src; })(), m.uid).then((o) => void out.set(m.uid, o)));
    }
  }
  await Promise.all(keeping);
  for (const uid of large) {
    if ((sizes.get(uid) ?? 0) > job.maxSize) {
      // Refuse without downloading: the server told us the size (RFC 9051 RFC822.SIZE).
      out.set(uid, { kind: 'refused', error: mailError('TOO_LARGE', `message of ${sizes.get(uid)} bytes exceeds mail.maxMessageSize ${job.maxSize}`) });
      continue;
    }
    const dl = await client.download(String(uid), undefined, { uid: true });
    if (!dl.content) continue;
    out.set(uid, await keepOne(job, deps, dl.content, uid));
  }
  return out;
}

/**
 * Run passes until nothing new is left. The folder must be selected (`client.mailboxOpen`).
 * Throws the first transient failure (after dealing with everything before it) so the caller
 * records it and tries again later; what was kept before it is moved and counted.
 */
export async function imapPass(client: ImapFlow, job: ImapJob, deps: PassDeps): Promise<PassResult> {
  const res: PassResult = { kept: 0, duplicates: 0, refused: 0 };
  const box = client.mailbox;
  if (!box) throw imapFailure(new Error('no folder selected'), job.settings.host);
  const cursor = job.cursor;
  if (cursor) {
    const uv = String(box.uidValidity);
    if (cursor.uidValidity !== uv) {
      if (cursor.uidValidity !== null) deps.log.warn({ folder: job.path, was: cursor.uidValidity, now: uv }, 'UIDVALIDITY changed: re-synchronising the folder (kept messages are recognised, not kept twice)');
      if (deps.db) await resetUidValidity(deps.db, cursor.folderId, uv);
      cursor.uidValidity = uv;
      cursor.lastUid = 0;
    }
  }
  for (;;) {
    const found = cursor
      ? await client.search({ uid: `${cursor.lastUid + 1}:*` }, { uid: true })
      : await client.search({ seen: false }, { uid: true });
    // "N:*" always matches the highest UID, even when it is below N (RFC 9051 §6.4.4).
    const pending = (found || []).filter((u) => !cursor || u > cursor.lastUid).sort((a, b) => a - b);
    if (!pending.length) return res;
    const uids = pending.slice(0, job.batch);
    const outcomes = await keepBatch(client, job, deps, uids);

    const kept: number[] = [];
    const refused: number[] = [];
    let handled = 0;
    let transient: MailError | undefined;
    for (const uid of uids) {
      const o = outcomes.get(uid);
      if (o?.kind === 'failed') {
        transient = o.error;
        break;
      }
      handled = uid;
      if (!o) continue; // gone from the server meanwhile
      deps.onOutcome?.(o);
      if (o.kind === 'kept') {
        kept.push(uid);
        if (o.message.duplicate) res.duplicates++;
        else res.kept++;
      } else {
        refused.push(uid);
        res.refused++;
        deps.log.warn({ folder: job.path, uid, err: o.error.message, status: o.error.status }, 'fetched message refused');
      }
    }
    // Everything in `kept` is durable now: only now may the server forget it.
    const host = job.settings.host;
    if (job.moveOnSuccess) await moveTo(client, kept, job.moveOnSuccess, host);
    else if (job.deleteOnServer && kept.length) must(await client.messageDelete(kept.join(','), { uid: true }), 'deleting', host);
    else if (!cursor && kept.length) must(await client.messageFlagsAdd(kept.join(','), ['\\Seen'], { uid: true }), 'flagging \\Seen', host);
    if (job.moveOnFailure) await moveTo(client, refused, job.moveOnFailure, host);
    else if (!cursor && refused.length) must(await client.messageFlagsAdd(refused.join(','), ['\\Seen'], { uid: true }), 'flagging \\Seen', host);
    if (cursor && handled) {
      if (deps.db) await advance(deps.db, cursor.folderId, cursor.uidValidity!, handled);
      cursor.lastUid = handled;
    }
    if (transient) throw transient;
  }
}
