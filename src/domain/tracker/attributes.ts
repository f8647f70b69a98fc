import type { KeyLine } from './keys.js';
import { LABELS, parseDate, parseDoneRatio } from './keys.js';
import { isMember, type CustomFieldRecord, type EnumKind } from './setup.js';
import type { TQ } from './tables.js';
import type { WorkPackageRow } from './work-packages.js';

/**
 * From `Key: value` lines to column values, under a route's rules: a default fixes an attribute
 * unless the route lists it in allow_override; an attribute without a default may be set from
 * the mail; the project only when overridable. Values that name nothing (a status that does not
 * exist, a date that is not one) are ignored and the reason kept, for the journal.
 */

/** The five attributes a route may give a default, as the original's options name them. */
export const DEFAULTABLE = ['project', 'type', 'category', 'priority', 'status'] as const;
export type Defaultable = (typeof DEFAULTABLE)[number];

/** A route's rules for mail, from the target's params. */
export interface HandlerRules {
  defaults: Partial<Record<Defaultable, string>>;
  /** Attribute names (type, status, …) or 'all'. */
  allowOverride: ReadonlySet<string>;
  noPermissionCheck: boolean;
  /** The From: address names a user only when DMARC passed for its domain (else anyone could write it). */
  requireDmarc?: boolean;
  /** Delimiter lines after which the body is ignored. */
  truncate: readonly string[];
}

/** Whether the mail may set `attr` under these rules. */
export function mayOverride(rules: HandlerRules, attr: string): boolean {
  const listed = rules.allowOverride.has('all') || rules.allowOverride.has(attr);
  if (attr === 'project') return listed;
  return listed || (rules.defaults as Record<string, string | undefined>)[attr] === undefined;
}

/** What the lines come to: columns to set, custom values by field id, and what was ignored and why. */
export interface Resolved {
  set: Partial<Pick<WorkPackageRow, 'type' | 'status' | 'priority' | 'assignee' | 'category' | 'version' | 'start_date' | 'due_date' | 'done_ratio'>>;
  custom: Map<string, string>;
  ignored: string[];
}

/** A type, status or priority by exact name. */
export async function enumByName(q: TQ, kind: EnumKind, name: string): Promise<string | undefined> {
  return (await q.selectFrom('tracker_enums').select('id').where('kind', '=', kind).where('name', '=', name).executeTakeFirst())?.id;
}

/** A category or version of a project by exact name. */
export async function namedIn(q: TQ, table: 'tracker_categories' | 'tracker_versions', project: number, name: string): Promise<string | undefined> {
  return (await q.selectFrom(table).select('id').where('project', '=', project).where('name', '=', name).executeTakeFirst())?.id;
}

/** A custom value as stored, or a reason it does not fit the field. */
function customValue(f: CustomFieldRecord, value: string): { value: string } | { error: string } {
  switch (f.format) {
    case 'integer':
      return /^[+-]?\d{1,15}$/.test(value) ? { value: String(Number(value)) } : { error: `'${value}' is not a whole number` };
    case 'date': {
      const d = parseDate(value);
      return 'date' in d ? { value: d.date } : d;
    }
    case 'list':
      return f.possibleValues.includes(value) ? { value } : { error: `'${value}' is not one of ${f.possibleValues.join(', ')}` };
    default:
      return value.length <= 1000 ? { value } : { error: 'longer than 1000 characters' };
  }
}

/**
 * Resolve every line but `project` (the caller settles that first: categories, versions and
 * assignees are looked up in the project it decides on).
 */
export async function resolveLines(
  q: TQ,
  lines: readonly KeyLine[],
  ctx: { project: number; projectName: string; rules: HandlerRules; fields: ReadonlyMap<string, CustomFieldRecord> },
): Promise<Resolved> {
  const out: Resolved = { set: {}, custom: new Map(), ignored: [] };
  for (const { attr, key, value } of lines) {
    if (attr === 'project') continue;
    const say = (why: string) => out.ignored.push(`${key}: ${why}`);
    if (!mayOverride(ctx.rules, attr)) {
      say(`'${value}' ignored: this route fixes the ${LABELS[attr]?.toLowerCase() ?? attr}`);
      continue;
    }
    if (attr === 'type' || attr === 'status' || attr === 'priority') {
      const id = await enumByName(q, attr, value);
      if (id) out.set[attr] = id;
      else say(`'${value}' is not a ${attr}`);
    } else if (attr === 'category' || attr === 'version') {
      const id = await namedIn(q, attr === 'category' ? 'tracker_categories' : 'tracker_versions', ctx.project, value);
      if (id) out.set[attr] = id;
      else say(`'${value}' is not a ${attr} of project ${ctx.projectName}`);
    } else if (attr === 'assignee') {
      const u = await q
        .selectFrom('tracker_users')
        .select(['id', 'login'])
        .where((eb) => eb.or([eb('login', '=', value), eb('email', '=', value.toLowerCase())]))
        .executeTakeFirst();
      if (!u) say(`'${value}' is no user's login or address`);
      else if (!(await isMember(q, ctx.project, u.id))) say(`${u.login} is not a member of project ${ctx.projectName}`);
      else out.set.assignee = u.id;
    } else if (attr === 'start_date' || attr === 'due_date') {
      const d = parseDate(value);
      if ('date' in d) out.set[attr] = d.date;
      else say(d.error);
    } else if (attr === 'done_ratio') {
      const r = parseDoneRatio(value);
      if ('ratio' in r) out.set.done_ratio = r.ratio;
      else say(r.error);
    } else if (attr.startsWith('cf:')) {
      const f = ctx.fields.get(attr.slice(3));
      const v = f ? customValue(f, value) : { error: 'unknown field' };
      if ('value' in v) out.custom.set(attr.slice(3), v.value);
      else say(v.error);
    }
  }
  return out;
}

/** Drop a due date before the start date (naming why), comparing with what the work package has. */
export function checkDates(r: Resolved, current: { start_date: string | null; due_date: string | null } | undefined): void {
  const start = r.set.start_date ?? current?.start_date ?? null;
  const due = r.set.due_date ?? current?.due_date ?? null;
  if (start && due && due < start && r.set.due_date) {
    r.ignored.push(`Due date: ${due} is before the start date ${start}`);
    delete r.set.due_date;
  }
}

/** The journal's note about ignored lines ('' when nothing was ignored). */
export function ignoredNote(ignored: readonly string[]): string {
  return ignored.length ? `Ignored in the mail:\n${ignored.map((i) => `- ${i}`).join('\n')}` : '';
}
