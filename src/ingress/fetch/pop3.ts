import { mailError } from '../../core/errors.js';
import type { Accept } from '../../intake/accept.js';
import type { Db } from '../../store/db.js';
import type { Logger } from '../../telemetry/log.js';
import type { PassResult } from './imap.js';
import { keepFetched, type FetchOrigin, type KeepOutcome } from './keep.js';
import { Pop3Session, type Pop3Settings } from './pop3-client.js';
import { linkFetched, markSeen, pruneSeen, seenUidls } from './state.js';

/**
 * One POP3 poll. POP3 has no folders and no flags, so what was dealt with is remembered by
 * UIDL (RFC 1939 §7) in pop3_seen. Per message: keep (fsync + commit) → remember → DELE. A
 * DELE only takes effect at QUIT; a session that dies before QUIT loses its deletions, so a
 * remembered message still on the server is deleted again at the next poll.
 */

export interface Pop3Job {
  settings: Pop3Settings;
  origin: FetchOrigin;
  deleteOnServer: boolean;
  /** Delete messages refused for good too (default: leave them on the server). */
  deleteUnprocessed: boolean;
  /** Watcher mode: remember UIDLs in pop3_seen for this folder. Without it, intake's dedup alone keeps nothing twice. */
  seen?: { folderId: string };
  /** Recorded in mail_links for each kept message (needs deps.db). */
  link?: { account: string; folder: string | null; route: string | null; deliver?: string | null };
  maxSize: number;
}

export interface Pop3PassDeps {
  accept: Accept;
  log: Logger;
  db?: Db;
  signal?: AbortSignal;
  onOutcome?: (o: KeepOutcome) => void;
}

/** Poll once: keep what is new, delete per the job, QUIT. Throws MailError on connection/login failure or a transient keep failure. */
export async function pop3Pass(job: Pop3Job, deps: Pop3PassDeps): Promise<PassResult> {
  const res: PassResult = { kept: 0, duplicates: 0, refused: 0 };
  const session = await Pop3Session.open(job.settings);
  const stop = () => session.close();
  deps.signal?.addEventListener('abort', stop);
  let quit = false;
  try {
    const sizes = await session.list();
    let uidls: Map<number, string>;
    try {
      uidls = await session.uidl();
    } catch (err) {
      if (job.seen) throw mailError('TARGET_TEMPFAIL', `${job.settings.host}: the server has no UIDL, which fetching without duplicates needs`, { cause: err });
      uidls = new Map([...sizes.keys()].map((n) => [n, `#${n}`]));
    }
    const db = deps.db;
    const seen = db && job.seen ? await seenUidls(db, job.seen.folderId) : new Map<string, string>();
    let transient: Error | undefined;
    for (const n of [...uidls.keys()].sort((a, b) => a - b)) {
      if (deps.signal?.aborted) break;
      const uidl = uidls.get(n)!;
      const prior = seen.get(uidl);
      if (prior) {
        if ((prior === 'kept' && job.deleteOnServer) || (prior === 'failed' && job.deleteUnprocessed)) await session.dele(n);
        continue;
      }
      const size = sizes.get(n) ?? 0;
      const o: KeepOutcome =
        size > job.maxSize
          ? { kind: 'refused', error: mailError('TOO_LARGE', `message of ${size} bytes exceeds mail.maxMessageSize ${job.maxSize}`) }
          : await keepFetched(deps.accept, job.origin, await session.retr(n), { maxSize: job.maxSize });
      if (o.kind === 'failed') {
        transient = o.error;
        break;
      }
      deps.onOutcome?.(o);
      if (o.kind === 'kept') {
        if (o.message.duplicate) res.duplicates++;
        else res.kept++;
        if (db && job.link) await linkFetched(db, [{ message: o.message.id, ...job.link, uid: null }]);
        if (db && job.seen) {
          await markSeen(db, job.seen.folderId, uidl, o.message.id, 'kept');
        }
        // Only now is it durable and remembered: the server may forget it.
        if (job.deleteOnServer) await session.dele(n);
      } else {
        res.refused++;
        deps.log.warn({ host: job.settings.host, uidl, err: o.error.message, status: o.error.status }, 'fetched message refused');
        if (db && job.seen) await markSeen(db, job.seen.folderId, uidl, null, 'failed');
        if (job.deleteUnprocessed) await session.dele(n);
      }
    }
    // QUIT commits the DELEs (RFC 1939 §6) even when a keep failed: those before it are safe.
    await session.quit();
    quit = true;
    if (db && job.seen && !transient) await pruneSeen(db, job.seen.folderId, new Set(uidls.values()));
    if (transient) throw transient;
    return res;
  } finally {
    deps.signal?.removeEventListener('abort', stop);
    if (!quit) session.close();
  }
}
