import type { TQ } from './tables.js';
import { workPackageRow, type AttachmentRecord, type Change, type JournalRecord, type PersonRef, type WorkPackageRecord, type WorkPackageRow } from './work-packages.js';

/** Reading work packages with names resolved: for the API, the CLI and the tests. */

async function people(q: TQ, ids: (string | null)[]): Promise<Map<string, PersonRef>> {
  const want = [...new Set(ids.filter((i): i is string => !!i))];
  if (!want.length) return new Map();
  const rows = await q.selectFrom('tracker_users').select(['id', 'login', 'name']).where('id', 'in', want).execute();
  return new Map(rows.map((r) => [r.id, r]));
}

async function names(q: TQ, table: 'tracker_enums' | 'tracker_categories' | 'tracker_versions', ids: (string | null)[]): Promise<Map<string, string>> {
  const want = [...new Set(ids.filter((i): i is string => !!i))];
  if (!want.length) return new Map();
  const rows = await q.selectFrom(table).select(['id', 'name']).where('id', 'in', want).execute();
  return new Map(rows.map((r) => [r.id, r.name]));
}

/** Rows as records: one query per kind of name, not per row. */
async function resolve(q: TQ, rows: WorkPackageRow[]): Promise<WorkPackageRecord[]> {
  if (!rows.length) return [];
  const ids = rows.map((r) => r.id);
  const [users, enums, cats, vers, projects, custom, watchers] = await Promise.all([
    people(q, rows.flatMap((r) => [r.author, r.assignee])),
    names(q, 'tracker_enums', rows.flatMap((r) => [r.type, r.status, r.priority])),
    names(q, 'tracker_categories', rows.map((r) => r.category)),
    names(q, 'tracker_versions', rows.map((r) => r.version)),
    q.selectFrom('tracker_projects').selectAll().where('id', 'in', [...new Set(rows.map((r) => r.project))]).execute(),
    q
      .selectFrom('tracker_custom_values')
      .innerJoin('tracker_custom_fields', 'tracker_custom_fields.id', 'tracker_custom_values.field')
      .select(['tracker_custom_values.work_package as wp', 'tracker_custom_fields.name as name', 'tracker_custom_values.value as value'])
      .where('tracker_custom_values.work_package', 'in', ids)
      .execute(),
    q
      .selectFrom('tracker_watchers')
      .innerJoin('tracker_users', 'tracker_users.id', 'tracker_watchers.user_id')
      .select(['tracker_watchers.work_package as wp', 'tracker_users.id as id', 'tracker_users.login as login', 'tracker_users.name as name'])
      .where('tracker_watchers.work_package', 'in', ids)
      .orderBy('tracker_users.login')
      .execute(),
  ]);
  const proj = new Map(projects.map((p) => [Number(p.id), { id: Number(p.id), identifier: p.identifier, name: p.name }]));
  return rows.map((r) => ({
    id: r.id,
    project: proj.get(r.project) ?? { id: r.project, identifier: '?', name: '?' },
    subject: r.subject,
    description: r.description,
    type: enums.get(r.type) ?? '?',
    status: enums.get(r.status) ?? '?',
    priority: enums.get(r.priority) ?? '?',
    author: (r.author && users.get(r.author)) || null,
    assignee: (r.assignee && users.get(r.assignee)) || null,
    category: (r.category && cats.get(r.category)) || null,
    version: (r.version && vers.get(r.version)) || null,
    startDate: r.start_date,
    dueDate: r.due_date,
    doneRatio: r.done_ratio,
    customValues: Object.fromEntries(custom.filter((c) => Number(c.wp) === r.id).map((c) => [c.name, c.value])),
    watchers: watchers.filter((w) => Number(w.wp) === r.id).map(({ id, login, name }) => ({ id, login, name })),
    message: r.message,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }));
}

/** One work package, or undefined. */
export async function getWorkPackage(q: TQ, id: number): Promise<WorkPackageRecord | undefined> {
  const row = await workPackageRow(q, id);
  return row ? (await resolve(q, [row]))[0] : undefined;
}

/** Work packages by id ascending, filtered by project; `after` pages. */
export async function listWorkPackages(q: TQ, f: { project?: number; after?: number; limit: number }): Promise<WorkPackageRecord[]> {
  let query = q.selectFrom('tracker_work_packages').selectAll().orderBy('id').limit(f.limit);
  if (f.project !== undefined) query = query.where('project', '=', f.project);
  if (f.after !== undefined) query = query.where('id', '>', f.after);
  const rows = (await query.execute()).map((r) => ({ ...r, id: Number(r.id), project: Number(r.project), done_ratio: Number(r.done_ratio) }));
  return resolve(q, rows);
}

/** A work package's journal, oldest first. */
export async function listJournals(q: TQ, wp: number): Promise<JournalRecord[]> {
  const rows = await q.selectFrom('tracker_journals').selectAll().where('work_package', '=', wp).orderBy('created_at').orderBy('id').execute();
  const users = await people(q, rows.map((r) => r.user_id));
  return rows.map((r) => ({
    id: r.id,
    user: (r.user_id && users.get(r.user_id)) || null,
    notes: r.notes,
    changes: JSON.parse(r.changes) as Change[],
    message: r.message,
    createdAt: r.created_at,
  }));
}

/** A work package's attachments, in the order they came. */
export async function listAttachments(q: TQ, wp: number): Promise<AttachmentRecord[]> {
  const rows = await q.selectFrom('tracker_attachments').selectAll().where('work_package', '=', wp).orderBy('created_at').orderBy('id').execute();
  return rows.map((r) => ({
    id: r.id,
    workPackage: Number(r.work_package),
    journal: r.journal,
    filename: r.filename,
    contentType: r.content_type,
    size: Number(r.size),
    sha256: r.sha256,
    createdAt: r.created_at,
  }));
}
