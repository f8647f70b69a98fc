import { newId } from '../../core/ids.js';
import type { TQ, TrackerWorkPackagesTable } from './tables.js';

/**
 * Work packages as stored, and the journal of what happened to each: who, when, which
 * attributes changed from what to what, and notes. Writers take a transaction so that a work
 * package, its journal, watchers, attachments and Message-IDs are kept together or not at all.
 */

/** One attribute change in a journal. */
export interface Change {
  field: string;
  old: string | null;
  new: string | null;
}

export interface PersonRef {
  id: string;
  login: string;
  name: string;
}

export interface JournalRecord {
  id: string;
  user: PersonRef | null;
  notes: string;
  changes: Change[];
  message: string | null;
  createdAt: string;
}

export interface AttachmentRecord {
  id: string;
  workPackage: number;
  journal: string | null;
  filename: string;
  contentType: string;
  size: number;
  sha256: string;
  createdAt: string;
}

/** A work package with names resolved, as the API and CLI show it. */
export interface WorkPackageRecord {
  id: number;
  project: { id: number; identifier: string; name: string };
  subject: string;
  description: string;
  type: string;
  status: string;
  priority: string;
  author: PersonRef | null;
  assignee: PersonRef | null;
  category: string | null;
  version: string | null;
  startDate: string | null;
  dueDate: string | null;
  doneRatio: number;
  customValues: Record<string, string>;
  watchers: PersonRef[];
  message: string | null;
  createdAt: string;
  updatedAt: string;
}

export type WorkPackageRow = TrackerWorkPackagesTable;

/** Insert a work package (an object under its project, named `#<id>`); resolves with its id. */
export async function insertWorkPackage(trx: TQ, row: Omit<WorkPackageRow, 'id' | 'created_at' | 'updated_at'>): Promise<number> {
  const now = new Date().toISOString();
  const { id } = await trx
    .insertInto('objects')
    .values({ kind: 'work_package', name: `wp-${newId()}`, parent: row.project, properties: '{}', created_at: now, updated_at: now })
    .returning('id')
    .executeTakeFirstOrThrow();
  const n = Number(id);
  await trx.updateTable('objects').set({ name: `#${n}` }).where('id', '=', n).execute();
  await trx.insertInto('tracker_work_packages').values({ ...row, id: n, created_at: now, updated_at: now }).execute();
  return n;
}

/** The stored row of a work package, or undefined. */
export async function workPackageRow(q: TQ, id: number): Promise<WorkPackageRow | undefined> {
  if (!Number.isSafeInteger(id) || id <= 0) return undefined;
  const r = await q.selectFrom('tracker_work_packages').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? { ...r, id: Number(r.id), project: Number(r.project), done_ratio: Number(r.done_ratio) } : undefined;
}

/** Change stored columns of a work package (and its object's parent when it moves project). */
export async function updateWorkPackageRow(trx: TQ, id: number, set: Partial<Omit<WorkPackageRow, 'id' | 'created_at'>>): Promise<void> {
  const now = new Date().toISOString();
  await trx.updateTable('tracker_work_packages').set({ ...set, updated_at: now }).where('id', '=', id).execute();
  await trx
    .updateTable('objects')
    .set({ updated_at: now, ...(set.project !== undefined ? { parent: set.project } : {}) })
    .where('id', '=', id)
    .execute();
}

/** Custom values of a work package by field id. */
export async function customValues(q: TQ, wp: number): Promise<Map<string, string>> {
  const rows = await q.selectFrom('tracker_custom_values').select(['field', 'value']).where('work_package', '=', wp).execute();
  return new Map(rows.map((r) => [r.field, r.value]));
}

/** Set (or replace) one custom value. */
export async function setCustomValue(trx: TQ, wp: number, field: string, value: string): Promise<void> {
  await trx
    .insertInto('tracker_custom_values')
    .values({ work_package: wp, field, value })
    .onConflict((oc) => oc.columns(['work_package', 'field']).doUpdateSet({ value }))
    .execute();
}

/** Add watchers (those already watching stay once). */
export async function addWatchers(trx: TQ, wp: number, users: string[]): Promise<void> {
  for (const u of new Set(users)) {
    await trx.insertInto('tracker_watchers').values({ work_package: wp, user_id: u }).onConflict((oc) => oc.columns(['work_package', 'user_id']).doNothing()).execute();
  }
}

/** Append a journal entry; resolves with its id. */
export async function addJournal(
  trx: TQ,
  j: { workPackage: number; user: string | null; notes: string; changes: Change[]; message: string | null; delivery: string | null },
): Promise<string> {
  const id = newId();
  await trx
    .insertInto('tracker_journals')
    .values({
      id,
      work_package: j.workPackage,
      user_id: j.user,
      notes: j.notes,
      changes: JSON.stringify(j.changes),
      message: j.message,
      delivery: j.delivery,
      created_at: new Date().toISOString(),
    })
    .execute();
  return id;
}

/** Attach stored blobs to a work package (from the journal entry that added them). */
export async function addAttachments(
  trx: TQ,
  wp: number,
  journal: string | null,
  files: { filename: string; contentType: string; size: number; sha256: string }[],
): Promise<void> {
  const now = new Date().toISOString();
  for (const f of files) {
    await trx
      .insertInto('tracker_attachments')
      .values({ id: newId(), work_package: wp, journal, filename: f.filename, content_type: f.contentType, size: f.size, sha256: f.sha256, created_at: now })
      .execute();
  }
}

/** Remember that a Message-ID names a work package (ours: `notification`; a mail's own: `incoming`). */
export async function recordMailId(trx: TQ, messageId: string, wp: number, kind: 'notification' | 'incoming'): Promise<void> {
  await trx
    .insertInto('tracker_mail_ids')
    .values({ message_id: messageId, work_package: wp, kind, created_at: new Date().toISOString() })
    .onConflict((oc) => oc.column('message_id').doNothing())
    .execute();
}

/** The work package the first of these Message-IDs that we know names, or undefined. */
export async function workPackageForMailIds(q: TQ, ids: string[]): Promise<number | undefined> {
  if (!ids.length) return undefined;
  const rows = await q.selectFrom('tracker_mail_ids').select(['message_id', 'work_package']).where('message_id', 'in', ids).execute();
  const by = new Map(rows.map((r) => [r.message_id, Number(r.work_package)]));
  for (const id of ids) if (by.has(id)) return by.get(id);
  return undefined;
}

/** What a delivery already did (a retry after a crash finds it done): the work package it made, or the journal it added. */
export async function doneByDelivery(q: TQ, delivery: string): Promise<{ created?: number; journal?: { id: string; workPackage: number } }> {
  const wp = await q.selectFrom('tracker_work_packages').select('id').where('delivery', '=', delivery).executeTakeFirst();
  if (wp) return { created: Number(wp.id) };
  const j = await q.selectFrom('tracker_journals').select(['id', 'work_package']).where('delivery', '=', delivery).executeTakeFirst();
  return j ? { journal: { id: j.id, workPackage: Number(j.work_package) } } : {};
}
