import type { MimeDefect } from '../core/mime-defects.js';

/** What a Date field says: the instant (ISO, UTC) or null, and what was wrong with it. */
export interface MailDate {
  iso: string | null;
  defect?: MimeDefect;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const FULL_MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** RFC 5322 §4.3 obs-zone names, in minutes east of UTC (military letters are not here: -0000). */
const ZONES: Record<string, number> = { UT: 0, UTC: 0, GMT: 0, Z: 0, EST: -300, EDT: -240, CST: -360, CDT: -300, MST: -420, MDT: -360, PST: -480, PDT: -420 };

function month(s: string): number {
  const m = s.toLowerCase().replace(/\.$/, '');
  const i = MONTHS.indexOf(m);
  return i >= 0 ? i : FULL_MONTHS.indexOf(m);
}

/** Comments (RFC 5322 §3.2.2 CFWS) out of a date: `(EST)` after the zone is common. */
function dropComments(v: string): string {
  let prev;
  do {
    prev = v;
    v = v.replace(/\([^()]*\)/g, ' ');
  } while (v !== prev);
  return v;
}

/**
 * Parse an RFC 5322 date-time, with the obsolete forms of §4.3 and the shuffles real mail has
 * (day and month swapped, asctime order, `.` in the time, no comma), the way Python's
 * `email.utils` does. The message's date is never made up: what does not parse is null with
 * `invalid-date`; a zone that is unknown or missing counts as -0000 (§4.3) with `unknown-date-zone`.
 */
export function parseMailDate(value: string | null): MailDate {
  if (value === null) return { iso: null };
  let words = dropComments(value).trim().split(/\s+/).filter(Boolean);
  if (!words.length) return { iso: null, defect: 'invalid-date' };
  if (words[0].endsWith(',') || (/^[a-z]+$/i.test(words[0]) && DAYS.includes(words[0].toLowerCase().slice(0, 3)))) {
    words.shift();
  } else {
    const comma = words[0].lastIndexOf(',');
    if (comma >= 0) words[0] = words[0].slice(comma + 1);
  }
  if (words.length === 3) {
    // RFC 850 `20-Nov-95 19:12:08 GMT`.
    const dmy = words[0].split('-');
    if (dmy.length === 3) words = [...dmy, ...words.slice(1)];
  }
  if (words.length === 4) {
    // `... 19:12:08-0500`: the zone glued to the time.
    const s = words[3];
    const at = Math.max(s.indexOf('+'), s.indexOf('-'));
    words = at > 0 ? [...words.slice(0, 3), s.slice(0, at), s.slice(at)] : [...words, ''];
  }
  if (words.length < 5) return { iso: null, defect: 'invalid-date' };
  let [dd, mm, yy, tm, tz] = words.slice(0, 5).map((w) => w.replace(/,$/, ''));
  let mon = month(mm);
  if (mon < 0) {
    [dd, mm] = [mm, dd];
    mon = month(mm);
    if (mon < 0) return { iso: null, defect: 'invalid-date' };
  }
  if (yy.includes(':')) [yy, tm] = [tm, yy];
  if (!/^\d/.test(yy)) [yy, tz] = [tz, yy];
  const t = tm.includes(':') ? tm.split(':') : tm.split('.');
  if (t.length < 2 || t.length > 3) return { iso: null, defect: 'invalid-date' };
  const nums = [yy, dd, ...t];
  if (!nums.every((n) => /^\d{1,4}$/.test(n))) return { iso: null, defect: 'invalid-date' };
  let year = Number(yy);
  // RFC 5322 §4.3: two digits 00-49 are 20xx, 50-99 19xx; three digits add 1900.
  if (yy.length <= 2) year += year < 50 ? 2000 : 1900;
  else if (yy.length === 3) year += 1900;
  const [day, hour, minute] = [Number(dd), Number(t[0]), Number(t[1])];
  // A leap second (60) is kept as the last second of its minute.
  const second = Math.min(Number(t[2] ?? 0), 59);
  if (day < 1 || day > 31 || hour > 23 || minute > 59 || Number(t[2] ?? 0) > 60) return { iso: null, defect: 'invalid-date' };
  let offset: number | null = null;
  const zone = tz.toUpperCase();
  if (zone in ZONES) offset = ZONES[zone];
  else if (/^[+-]\d{3,4}$/.test(zone)) {
    // Four digits per §3.3; three (`-600`) are read as h mm, as Python's email does.
    const hh = Number(zone.slice(1, -2));
    const mm = Number(zone.slice(-2));
    if (mm < 60) offset = (zone[0] === '-' ? -1 : 1) * (hh * 60 + mm);
    // `-0000` is a zone: UTC, with the local offset unknown (§3.3).
  }
  const utc = Date.UTC(year, mon, day, hour, minute, second) - (offset ?? 0) * 60_000;
  const check = new Date(Date.UTC(year, mon, day));
  if (check.getUTCDate() !== day || year < 1900 || year > 9999) return { iso: null, defect: 'invalid-date' };
  return offset === null ? { iso: new Date(utc).toISOString(), defect: 'unknown-date-zone' } : { iso: new Date(utc).toISOString() };
}
