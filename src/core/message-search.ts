import { mailError } from './errors.js';

/**
 * The message search syntax, one parser for the API (`GET /api/v1/messages?q=`) and the console
 * (which calls that API): `from: to: rcpt: subject: message-id: status: route: ingress:
 * has:attachment before: after: larger: smaller:` and free text; `-` in front negates a term;
 * "double quotes" keep spaces in a value. A word whose key is not one of these is free text, so
 * `re: hello` searches for "re:" and "hello" instead of failing. Free text and the address and
 * subject keys are case-insensitive substrings; free text looks in the subject, the sender
 * (From: and MAIL FROM), the recipients (To/Cc/Reply-To and RCPT TO) and the start of the text
 * body, through the store's search index.
 */

/**
 * Characters of a text body that free text is searched in: the start of a long body is what
 * names it, and the index stays small (parsing keeps this much for the store's search index).
 */
export const SEARCH_BODY_CHARS = 16 * 1024;

export type SearchField = 'from' | 'to' | 'rcpt' | 'subject' | 'message-id' | 'status' | 'route' | 'ingress' | 'has' | 'before' | 'after' | 'larger' | 'smaller' | 'text';

export interface SearchTerm {
  field: SearchField;
  /** Normalised: a size in bytes as digits, an instant as toISOString(), else the text given. */
  value: string;
  negate: boolean;
}

export const SEARCH_KEYS: readonly SearchField[] = ['from', 'to', 'rcpt', 'subject', 'message-id', 'status', 'route', 'ingress', 'has', 'before', 'after', 'larger', 'smaller'];

const HAS_VALUES = new Set(['attachment']);
const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/** Split a query into words: whitespace separates, "double quotes" keep spaces (a key may precede them). */
function words(q: string): { raw: string; quoted: boolean }[] {
  const out: { raw: string; quoted: boolean }[] = [];
  const re = /(\S*?)"([^"]*)"?|(\S+)/g;
  for (let m = re.exec(q); m; m = re.exec(q)) {
    if (m[3] !== undefined) out.push({ raw: m[3], quoted: false });
    else out.push({ raw: `${m[1]}${m[2]}`, quoted: true });
  }
  return out;
}

function invalid(detail: string): never {
  throw mailError('INVALID_REQUEST', `query.q: ${detail}`);
}

function sizeOf(v: string): string {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(v);
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) invalid(`'${v}' is not a size (e.g. 500k, 2M, 1024)`);
  return String(Math.round(Number(m[1]) * unit));
}

function instantOf(v: string): string {
  // A bare date means midnight UTC of that day (Date parses 'YYYY-MM-DD' as UTC already).
  const d = new Date(v);
  if (!/\d/.test(v) || Number.isNaN(d.getTime())) invalid(`'${v}' is not a date (use ISO 8601, e.g. 2026-01-31 or 2026-01-31T12:00:00Z)`);
  return d.toISOString();
}

/** Parse a search query into terms (all must hold). INVALID_REQUEST names a bad value. */
export function parseSearch(q: string): SearchTerm[] {
  // No kept text holds NUL (parsing replaces it), and PostgreSQL cannot compare text holding one.
  if (q.includes('\u0000')) invalid('must not contain NUL');
  const terms: SearchTerm[] = [];
  for (const w of words(q)) {
    let raw = w.raw;
    let negate = false;
    if (raw.startsWith('-') && raw.length > 1) {
      negate = true;
      raw = raw.slice(1);
    }
    const colon = raw.indexOf(':');
    const key = colon > 0 ? raw.slice(0, colon).toLowerCase() : '';
    if (key && (SEARCH_KEYS as readonly string[]).includes(key)) {
      const field = key as SearchField;
      const value = raw.slice(colon + 1);
      if (!value) invalid(`${key}: needs a value`);
      if (field === 'has') {
        if (!HAS_VALUES.has(value.toLowerCase())) invalid(`has:${value} is not known (has:attachment)`);
        terms.push({ field, value: value.toLowerCase(), negate });
      } else if (field === 'larger' || field === 'smaller') terms.push({ field, value: sizeOf(value), negate });
      else if (field === 'before' || field === 'after') terms.push({ field, value: instantOf(value), negate });
      else terms.push({ field, value, negate });
      continue;
    }
    if (raw) terms.push({ field: 'text', value: raw, negate });
  }
  if (terms.length > 32) invalid('at most 32 terms');
  return terms;
}
