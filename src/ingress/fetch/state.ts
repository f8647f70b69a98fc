import { sql } from 'kysely';
import { relaxedTransaction, transact, type Db } from '../../store/db.js';

/**
 * What a fetcher writes back: where it got to in a folder (UIDVALIDITY, last UID, POP3 UIDLs
 * seen), how its polls go (health), and which kept message came from which folder.
 */

const now = () => new Date().toISOString();

/*
 * Health rows are written without an fsync of their own (relaxedTransaction): they say how the
 * polls go and are rewritten by the next one, so a crash may lose one harmlessly. Above all, a
 * failure to keep must still be recorded while the disk is failing: with a durable write the
 * record of an fsync EIO needed an fsync itself, failed the same way, and the folder showed no
 * failure at all while every pass answered 451 4.3.0.
 */

/** A poll finished without error: health is good again. */
export async function recordOk(db: Db, folder: string): Promise<void> {
  await relaxedTransaction(db.kysely, (trx) =>
    trx.updateTable('mail_folders').set({ last_ok_at: now(), last_error: null, consecutive_failures: 0 }).where('id', '=', folder).execute(),
  );
}

/** A poll (or the connection) failed: kept as the folder's last error, failures counted. */
export async function recordFailure(db: Db, folder: string, error: string): Promise<number> {
  const r = await relaxedTransaction(db.kysely, (trx) =>
    trx
      .updateTable('mail_folders')
      .set((eb) => ({ last_error: error.slice(0, 2000), last_error_at: now(), consecutive_failures: eb('consecutive_failures', '+', 1) }))
      .where('id', '=', folder)
      .returning('consecutive_failures')
      .executeTakeFirst(),
  );
  return Number(r?.consecutive_failures ?? 0);
}

/**
 * IMAP: everything up to `lastUid` under `uidValidity` is done (kept, or refused and dealt
 * with). Only ever moves forward, so a late writer cannot take the cursor back.
 */
export async function advance(db: Db, folder: string, uidValidity: string, lastUid: number): Promise<void> {
  await db.kysely
    .updateTable('mail_folders')
    .set({ last_uid: lastUid })
    .where('id', '=', folder)
    .where('uidvalidity', '=', uidValidity)
    .where('last_uid', '<', lastUid)
    .execute();
}

/**
 * IMAP: the server's UIDVALIDITY differs from the one stored (RFC 9051 §2.3.1.1: every UID
 * may have changed). Start again from UID 1; the dedup key (Message-ID or folder scope, bytes,
 * recipient) makes what was kept before come back as a duplicate, not a second message.
 */
export async function resetUidValidity(db: Db, folder: string, uidValidity: string): Promise<void> {
  await db.kysely.updateTable('mail_folders').set({ uidvalidity: uidValidity, last_uid: 0 }).where('id', '=', folder).execute();
}

/**
 * Note which account and folder a kept message came from (idempotent), and count each message
 * into its folder's `fetched` total the first time it is linked, in the same transaction: a
 * crash between keeping and counting then costs nothing (the re-fetch finds the message kept,
 * links it, and counts it once), where a count kept apart from the link would drift.
 */
export async function linkFetched(
  db: Db,
  rows: { message: string; account: string; folder: string | null; uid: number | null; route: string | null; deliver?: string | null }[],
): Promise<void> {
  if (!rows.length) return;
  const t = now();
  await transact(db, async (trx) => {
    const inserted = await trx
      .insertInto('mail_links')
      .values(rows.map((r) => ({ ...r, kind: 'fetched', created_at: t })))
      .onConflict((oc) => oc.columns(['message', 'folder']).doNothing())
      .returning('folder')
      .execute();
    const perFolder = new Map<string, number>();
    for (const r of inserted) if (r.folder) perFolder.set(r.folder, (perFolder.get(r.folder) ?? 0) + 1);
    for (const [folder, n] of perFolder) {
      await trx.updateTable('mail_folders').set({ fetched: sql<number>`fetched + ${n}` }).where('id', '=', folder).execute();
    }
  });
}

/** POP3: UIDLs already dealt with in this folder. */
export async function seenUidls(db: Db, folder: string): Promise<Map<string, string>> {
  const rows = await db.kysely.selectFrom('pop3_seen').select(['uidl', 'outcome']).where('folder', '=', folder).execute();
  return new Map(rows.map((r) => [r.uidl, r.outcome]));
}

/** POP3: a UIDL was kept (or refused for good). */
export async function markSeen(db: Db, folder: string, uidl: string, message: string | null, outcome: 'kept' | 'failed'): Promise<void> {
  await db.kysely
    .insertInto('pop3_seen')
    .values({ folder, uidl, message, outcome, seen_at: now() })
    .onConflict((oc) => oc.columns(['folder', 'uidl']).doUpdateSet({ message, outcome }))
    .execute();
}

/** POP3: forget UIDLs no longer on the server (deleted there), so the table stays the size of the mailbox. */
export async function pruneSeen(db: Db, folder: string, present: Set<string>): Promise<void> {
  const rows = await db.kysely.selectFrom('pop3_seen').select('uidl').where('folder', '=', folder).execute();
  const gone = rows.map((r) => r.uidl).filter((u) => !present.has(u));
  for (let i = 0; i < gone.length; i += 500) {
    await db.kysely
      .deleteFrom('pop3_seen')
      .where('folder', '=', folder)
      .where('uidl', 'in', gone.slice(i, i + 500))
      .execute();
  }
}
