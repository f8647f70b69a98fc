import { mailError } from '../../core/errors.js';
import type { Db } from '../../store/db.js';
import { replyText, truncateAt } from '../../mime/reply.js';
import { checkDates, enumByName, ignoredNote, mayOverride, namedIn, resolveLines, type HandlerRules, type Resolved } from './attributes.js';
import { extractKeyLines, type KeyLine } from './keys.js';
import { getWorkPackage } from './read.js';
import { findProject, isMember, listCustomFields, userByEmail, type CustomFieldRecord, type EnumKind, type ProjectRecord, type UserRecord } from './setup.js';
import { tq, type TQ } from './tables.js';
import {
  addAttachments,
  addJournal,
  addWatchers,
  doneByDelivery,
  insertWorkPackage,
  recordMailId,
  setCustomValue,
  updateWorkPackageRow,
  workPackageForMailIds,
  workPackageRow,
  type Change,
  type WorkPackageRecord,
} from './work-packages.js';

/**
 * A mail becomes a work package, or a journal entry of the one it answers (the Redmine and
 * OpenProject mail handlers, without their cron jobs). The sender is mapped to a tracker user by
 * the address in From: — that is a lookup, not authentication: anyone can write any From:.
 * Everything a mail does is kept in one transaction, once per delivery.
 */

/** What the handler needs from a mail. */
export interface IncomingMail {
  subject: string;
  /** The text body (HTML-only mail: its text rendering). */
  text: string;
  /** The sender's address (From:, else the envelope sender). */
  from: string | null;
  /** To, Cc and envelope recipients: candidates for watchers. */
  recipients: string[];
  messageId: string | null;
  /** In-Reply-To first, then References newest first: the mails this one answers. */
  answers: string[];
  attachments: { filename: string; contentType: string; size: number; sha256: string }[];
  /** The message's DMARC result (RFC 7489) for the From: domain; undefined when not verified. */
  dmarc?: string;
}

export interface HandlerResult {
  workPackage: number;
  created: boolean;
  journal: string | null;
  summary: string;
  /** False when an earlier attempt of this delivery did the work (nothing happened now). */
  fresh: boolean;
}

/** `[#12]`, `[Support - Bug #12]`: the work package a subject names (the original's pattern). */
export function subjectReference(subject: string): number | undefined {
  const m = /\[(?:[^\]]*\s+)?#(\d{1,15})\]/.exec(subject);
  return m ? Number(m[1]) : undefined;
}

/** The author under the rules: the sender's user (a member of every project named), or anonymous (null) with no_permission_check. */
async function authorFor(q: TQ, rules: HandlerRules, sender: UserRecord | undefined, address: string | null, projects: ProjectRecord[], dmarc?: string): Promise<string | null> {
  if (rules.noPermissionCheck) return sender?.id ?? null;
  // The From: lookup becomes authentication only when the domain vouched for it (DMARC pass).
  if (rules.requireDmarc && dmarc !== 'pass') {
    throw mailError('SENDER_AUTH_FAILED', `Sender <${address ?? ''}> not authenticated: DMARC ${dmarc ?? 'not verified'} (this route requires DMARC pass to take the From: address as a tracker user)`);
  }
  if (!sender) {
    throw mailError('REJECTED', `Unknown sender <${address ?? ''}>: no tracker user has this address (a route with no_permission_check takes mail from anyone, as Anonymous)`);
  }
  for (const p of projects) {
    if (!(await isMember(q, p.id, sender.id))) throw mailError('NOT_AUTHORISED', `User ${sender.login} is not a member of project ${p.identifier}`);
  }
  return sender.id;
}

/** The project a `Project:` line names, when the route lets it; else undefined, with the reason noted. */
async function projectFromLine(q: TQ, rules: HandlerRules, line: KeyLine | undefined, ignored: string[]): Promise<ProjectRecord | undefined> {
  if (!line) return undefined;
  if (!mayOverride(rules, 'project')) {
    ignored.push(`${line.key}: '${line.value}' ignored: this route fixes the project (allow_override: project lets the mail choose)`);
    return undefined;
  }
  const p = await findProject(q, line.value);
  if (!p) ignored.push(`${line.key}: '${line.value}' is not a project`);
  return p;
}

async function enumOrDefault(q: TQ, kind: EnumKind, fromRoute: string | undefined): Promise<string> {
  if (fromRoute !== undefined) {
    const id = await enumByName(q, kind, fromRoute);
    if (!id) throw mailError('CONFIG', `the route's ${kind} '${fromRoute}' does not exist in the tracker`);
    return id;
  }
  const row = await q.selectFrom('tracker_enums').select('id').where('kind', '=', kind).orderBy('is_default', 'desc').orderBy('position').executeTakeFirst();
  if (!row) throw mailError('CONFIG', `the tracker has no ${kind} yet (add one: postroom tracker ${kind} add NAME)`);
  return row.id;
}

function diff(before: WorkPackageRecord, after: WorkPackageRecord): Change[] {
  const out: Change[] = [];
  const add = (field: string, a: string | number | null, b: string | number | null) => {
    if (a !== b) out.push({ field, old: a === null ? null : String(a), new: b === null ? null : String(b) });
  };
  add('project', before.project.identifier, after.project.identifier);
  for (const f of ['type', 'status', 'priority', 'category', 'version', 'startDate', 'dueDate', 'doneRatio'] as const) add(f, before[f], after[f]);
  add('assignee', before.assignee?.login ?? null, after.assignee?.login ?? null);
  const names = new Set([...Object.keys(before.customValues), ...Object.keys(after.customValues)]);
  for (const n of names) add(`custom:${n}`, before.customValues[n] ?? null, after.customValues[n] ?? null);
  return out;
}

async function saveCustom(trx: TQ, wp: number, r: Resolved): Promise<void> {
  for (const [field, value] of r.custom) await setCustomValue(trx, wp, field, value);
}

/** Handle one mail for one delivery (again for the same delivery: the first outcome). Throws MailError. */
export async function handleMail(db: Db, mail: IncomingMail, rules: HandlerRules, source: { message: string; delivery: string }): Promise<HandlerResult> {
  const q = tq(db.kysely);
  const done = await doneByDelivery(q, source.delivery);
  if (done.created) return { workPackage: done.created, created: true, journal: null, summary: `created work package #${done.created} (before)`, fresh: false };
  if (done.journal) return { workPackage: done.journal.workPackage, created: false, journal: done.journal.id, summary: `updated work package #${done.journal.workPackage} (before)`, fresh: false };

  const fields = new Map((await listCustomFields(q)).map((f): [string, CustomFieldRecord] => [f.id, f]));
  const customKeys = new Map([...fields.values()].map((f) => [f.name, `cf:${f.id}`]));
  const text = truncateAt(mail.text, rules.truncate);
  const sender = mail.from ? await userByEmail(q, mail.from) : undefined;

  let target = await workPackageForMailIds(q, mail.answers);
  if (target === undefined) {
    const n = subjectReference(mail.subject);
    if (n !== undefined) {
      if (!(await workPackageRow(q, n))) throw mailError('NOT_FOUND', `No work package #${n} (named in the subject)`);
      target = n;
    }
  }
  const ctx = { mail, rules, source, fields, customKeys, sender };
  return target === undefined ? create(q, text, ctx) : update(q, target, text, ctx);
}

interface Ctx {
  mail: IncomingMail;
  rules: HandlerRules;
  source: { message: string; delivery: string };
  fields: Map<string, CustomFieldRecord>;
  customKeys: Map<string, string>;
  sender: UserRecord | undefined;
}

async function create(q: TQ, text: string, c: Ctx): Promise<HandlerResult> {
  const { lines, rest } = extractKeyLines(text, c.customKeys);
  const ignored: string[] = [];
  let project = await projectFromLine(q, c.rules, lines.find((l) => l.attr === 'project'), ignored);
  if (!project && c.rules.defaults.project !== undefined) {
    project = await findProject(q, c.rules.defaults.project);
    if (!project) throw mailError('CONFIG', `the route's project '${c.rules.defaults.project}' does not exist in the tracker`);
  }
  if (!project) throw mailError('BAD_CONTENT', 'No project: the route names none, and the mail names none it may (allow_override: project)');
  const author = await authorFor(q, c.rules, c.sender, c.mail.from, [project], c.mail.dmarc);
  const r = await resolveLines(q, lines, { project: project.id, projectName: project.identifier, rules: c.rules, fields: c.fields });
  r.ignored.unshift(...ignored);
  checkDates(r, undefined);
  let category = r.set.category ?? null;
  if (!category && c.rules.defaults.category !== undefined) {
    category = (await namedIn(q, 'tracker_categories', project.id, c.rules.defaults.category)) ?? null;
    if (!category) r.ignored.push(`the route's category '${c.rules.defaults.category}' is not a category of project ${project.identifier}`);
  }
  const row = {
    project: project.id,
    subject: c.mail.subject.trim().slice(0, 255) || '(no subject)',
    description: rest,
    type: r.set.type ?? (await enumOrDefault(q, 'type', c.rules.defaults.type)),
    status: r.set.status ?? (await enumOrDefault(q, 'status', c.rules.defaults.status)),
    priority: r.set.priority ?? (await enumOrDefault(q, 'priority', c.rules.defaults.priority)),
    author,
    assignee: r.set.assignee ?? null,
    category,
    version: r.set.version ?? null,
    start_date: r.set.start_date ?? null,
    due_date: r.set.due_date ?? null,
    done_ratio: r.set.done_ratio ?? 0,
    message: c.source.message,
    delivery: c.source.delivery,
  };
  const watchers: string[] = [];
  for (const a of new Set(c.mail.recipients.map((x) => x.toLowerCase()))) {
    const u = await userByEmail(q, a);
    if (u && u.id !== author) watchers.push(u.id);
  }
  return q.transaction().execute(async (trx) => {
    const id = await insertWorkPackage(trx, row);
    await saveCustom(trx, id, r);
    await addWatchers(trx, id, watchers);
    const journal = await addJournal(trx, { workPackage: id, user: author, notes: ignoredNote(r.ignored), changes: [], message: c.source.message, delivery: c.source.delivery });
    await addAttachments(trx, id, journal, c.mail.attachments);
    if (c.mail.messageId) await recordMailId(trx, c.mail.messageId, id, 'incoming');
    const extra = r.ignored.length ? `; ${r.ignored.length} line(s) ignored` : '';
    return { workPackage: id, created: true, journal, summary: `created work package #${id} in project ${project.identifier}${extra}`, fresh: true };
  });
}

async function update(q: TQ, id: number, text: string, c: Ctx): Promise<HandlerResult> {
  const current = (await workPackageRow(q, id))!;
  const { lines, rest } = extractKeyLines(replyText(text), c.customKeys);
  const ignored: string[] = [];
  const home = (await findProject(q, current.project))!;
  const moveTo = await projectFromLine(q, c.rules, lines.find((l) => l.attr === 'project'), ignored);
  const project = moveTo ?? home;
  const author = await authorFor(q, c.rules, c.sender, c.mail.from, moveTo && moveTo.id !== home.id ? [home, moveTo] : [home], c.mail.dmarc);
  const r = await resolveLines(q, lines, { project: project.id, projectName: project.identifier, rules: c.rules, fields: c.fields });
  r.ignored.unshift(...ignored);
  checkDates(r, current);
  const set: Parameters<typeof updateWorkPackageRow>[2] = { ...r.set };
  if (project.id !== home.id) {
    set.project = project.id;
    // Categories and versions belong to a project: they do not move with the work package.
    set.category = r.set.category ?? null;
    set.version = r.set.version ?? null;
  }
  return q.transaction().execute(async (trx) => {
    const before = (await getWorkPackage(trx, id))!;
    await updateWorkPackageRow(trx, id, set);
    await saveCustom(trx, id, r);
    const after = (await getWorkPackage(trx, id))!;
    const notes = [rest, ignoredNote(r.ignored)].filter(Boolean).join('\n\n');
    const changes = diff(before, after);
    const journal = await addJournal(trx, { workPackage: id, user: author, notes, changes, message: c.source.message, delivery: c.source.delivery });
    await addAttachments(trx, id, journal, c.mail.attachments);
    if (c.mail.messageId) await recordMailId(trx, c.mail.messageId, id, 'incoming');
    const what = [changes.length ? `${changes.length} change(s)` : '', rest ? 'a note' : '', c.mail.attachments.length ? `${c.mail.attachments.length} attachment(s)` : '']
      .filter(Boolean)
      .join(', ');
    return { workPackage: id, created: false, journal, summary: `updated work package #${id}: ${what || 'nothing changed'}`, fresh: true };
  });
}
