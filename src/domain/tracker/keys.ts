import { normaliseNewlines, trimBlankLines } from '../../mime/reply.js';

/**
 * `Key: value` lines in a mail body (the Redmine/OpenProject mail handler's keywords): the key
 * is an attribute's displayed name, matched without regard to case; the value is taken as
 * written. Recognised lines are taken out of the text; the rest is the description (or the
 * note of a reply).
 */

/** The attributes a line may set, and the keys that name them (lower case). */
export const STANDARD_KEYS: Record<string, string[]> = {
  project: ['project'],
  assignee: ['assignee', 'assigned to'],
  type: ['type', 'tracker'],
  version: ['version', 'target version'],
  start_date: ['start date'],
  due_date: ['due date', 'finish date'],
  done_ratio: ['done ratio', '% done', 'progress'],
  status: ['status'],
  priority: ['priority'],
  category: ['category'],
};

/** Displayed names of the standard attributes (for journals and notes). */
export const LABELS: Record<string, string> = {
  project: 'Project',
  assignee: 'Assignee',
  type: 'Type',
  version: 'Version',
  start_date: 'Start date',
  due_date: 'Due date',
  done_ratio: 'Done ratio',
  status: 'Status',
  priority: 'Priority',
  category: 'Category',
};

/** A key as compared: lower case, inner runs of blanks as one space. */
export function normaliseKey(key: string): string {
  return key.trim().replace(/\s+/g, ' ').toLowerCase();
}

/** One recognised line: the attribute it sets ('status', or 'cf:<field id>'), the key as written, the value. */
export interface KeyLine {
  attr: string;
  key: string;
  value: string;
}

/**
 * Take the `Key: value` lines whose key names an attribute out of `text`. `custom` maps custom
 * field names to their attribute ('cf:<id>'); a standard key wins over a custom field of the
 * same name. Lines without a value are not recognised (they stay). When a key repeats, the
 * first value counts and every such line is removed.
 */
export function extractKeyLines(text: string, custom: ReadonlyMap<string, string> = new Map()): { lines: KeyLine[]; rest: string } {
  const byKey = new Map<string, string>();
  for (const [name, attr] of custom) byKey.set(normaliseKey(name), attr);
  for (const [attr, keys] of Object.entries(STANDARD_KEYS)) for (const k of keys) byKey.set(k, attr);
  const found: KeyLine[] = [];
  const seen = new Set<string>();
  const kept: string[] = [];
  for (const line of normaliseNewlines(text).split('\n')) {
    const m = /^[ \t]*([^:\n]{1,100}?)[ \t]*:[ \t]*(\S.*?)[ \t]*$/.exec(line);
    const attr = m ? byKey.get(normaliseKey(m[1])) : undefined;
    if (!m || !attr) {
      kept.push(line);
      continue;
    }
    if (!seen.has(attr)) found.push({ attr, key: m[1].trim(), value: m[2] });
    seen.add(attr);
  }
  return { lines: found, rest: trimBlankLines(kept.join('\n')) };
}

const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];

/** 1–12 for an English month name or its first three or more letters ('Mar', 'Sept.'), else undefined. */
function monthOf(word: string): number | undefined {
  const w = word.toLowerCase().replace(/\.$/, '');
  const i = w.length >= 3 ? MONTHS.findIndex((m) => m.startsWith(w)) : -1;
  return i < 0 ? undefined : i + 1;
}

function ymd(y: number, m: number, d: number): string | undefined {
  const date = new Date(Date.UTC(y, m - 1, d));
  if (y < 1000 || date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) return undefined;
  return `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

/**
 * A calendar date as 'YYYY-MM-DD', or a reason it is not one. Taken: 2026-03-31, 2026/03/31,
 * 31.03.2026, 31 March 2026, March 31, 2026 (and Mar). Refused: 03/04/2026, which reads as
 * 3 April in Europe and 4 March in the US.
 */
export function parseDate(value: string): { date: string } | { error: string } {
  const v = value.trim();
  const bad = { error: `'${v}' is not a date (write 2026-03-31)` };
  let m = /^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$/.exec(v);
  if (m) return wrap(ymd(+m[1], +m[2], +m[3]), bad);
  m = /^(\d{1,2})\.\s?(\d{1,2})\.\s?(\d{4})$/.exec(v);
  if (m) return wrap(ymd(+m[3], +m[2], +m[1]), bad);
  m = /^(\d{1,2})\.?\s+([A-Za-z]+\.?)\s+(\d{4})$/.exec(v);
  if (m && monthOf(m[2])) return wrap(ymd(+m[3], monthOf(m[2])!, +m[1]), bad);
  m = /^([A-Za-z]+\.?)\s+(\d{1,2}),?\s+(\d{4})$/.exec(v);
  if (m && monthOf(m[1])) return wrap(ymd(+m[3], monthOf(m[1])!, +m[2]), bad);
  if (/^\d{1,2}\/\d{1,2}\/\d{4}$/.test(v)) return { error: `'${v}' is ambiguous (day/month or month/day?); write 2026-03-31` };
  return bad;
}

function wrap(date: string | undefined, bad: { error: string }): { date: string } | { error: string } {
  return date ? { date } : bad;
}

/** A done ratio 0–100 ('40' or '40%'), or a reason. */
export function parseDoneRatio(value: string): { ratio: number } | { error: string } {
  const m = /^(\d{1,3})\s*%?$/.exec(value.trim());
  const n = m ? Number(m[1]) : NaN;
  return n >= 0 && n <= 100 ? { ratio: n } : { error: `'${value}' is not a percentage from 0 to 100` };
}
