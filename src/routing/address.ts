import { compilePythonRegex, translatePythonRegex } from './python-regex.js';

/**
 * Envelope addresses as routes see them, and the recipient patterns routes match them with:
 * exact addresses, `*` globs, `/regex/flags` with named groups, and `{placeholder}` templates
 * for plus-addressing (`ogo+wf+{route}@example.org`).
 */

/** An address split into its parts; `local` is unquoted, `domain` lower-cased. */
export interface ParsedAddress {
  local: string;
  domain: string;
  /** `local@domain` with the quoting removed: what patterns are matched against. */
  address: string;
}

/**
 * Normalise an envelope address: strip `<>`, undo RFC 5321 quoting of the local part
 * (`"Jan Novak/ACME"@fax` → `Jan Novak/ACME@fax`, `\x` → `x`), lower-case the domain.
 * The local part keeps its case: RFC 5321 §2.4 leaves it to the receiving host.
 */
export function parseAddress(raw: string): ParsedAddress {
  let s = raw.trim();
  if (s.startsWith('<') && s.endsWith('>')) s = s.slice(1, -1).trim();
  let local: string;
  let domain: string;
  const quoted = /^"((?:[^"\\]|\\.)*)"(?:@(.*))?$/s.exec(s);
  if (quoted) {
    local = quoted[1].replace(/\\(.)/gs, '$1');
    domain = quoted[2] ?? '';
  } else {
    const at = s.lastIndexOf('@');
    local = at < 0 ? s : s.slice(0, at);
    domain = at < 0 ? '' : s.slice(at + 1);
  }
  domain = domain.toLowerCase();
  return { local, domain, address: domain ? `${local}@${domain}` : local };
}

/** The `+`-separated segments of a local part: `ogo+wf+42` → ['ogo', 'wf', '42']. */
export function plusSegments(local: string): string[] {
  return local.split('+');
}

/** A compiled recipient pattern. `match` yields the named captures, or null. */
export interface RecipientPattern {
  kind: 'exact' | 'glob' | 'regex' | 'template' | 'any';
  source: string;
  /** Names of the captures a match can yield (for template variable checks at config load). */
  captures: string[];
  match(address: string): Record<string, string> | null;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

// `g` and `y` make RegExp.test stateful (lastIndex), which would make a route match every other message.
const REGEX_FLAGS = /^[imsuv]*$/;
const CAPTURE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parse `/source/flags` into a RegExp; null when `text` is not in that form; throws on a bad
 * regex. The source may be in Python's syntax too (`(?P<name>…)`, see python-regex.ts).
 */
export function parseSlashRegex(text: string): RegExp | null {
  const m = /^\/(.*)\/([a-z]*)$/s.exec(text);
  if (!m) return null;
  if (!REGEX_FLAGS.test(m[2])) throw new Error(`regex flags '${m[2]}' not allowed (use i, m, s, u, v)`);
  return compilePythonRegex(m[1], m[2]);
}

/** A regex as routes write it: `/source/flags`, or a plain source (JavaScript or Python syntax) searched case-insensitively. */
export function compileRegex(s: string): RegExp {
  return parseSlashRegex(s) ?? compilePythonRegex(s, 'i');
}

/**
 * A recipient pattern written bare in Python's syntax, as the fax gateway's config has them
 * (`(?P<number>\+?\d+)@fax`): told from a glob by its named groups, and anchored at the
 * start like Python's `re.match`, which that gateway uses.
 */
const PYTHON_GROUP = /\(\?P[<=]/;

function bareRegex(source: string): RegExp {
  const t = translatePythonRegex(source);
  return new RegExp(`^(?:${t.source})`, [...new Set(`${t.flags}i`)].join(''));
}

/** Named groups a regex source declares (`(?<name>…)`), in order. */
export function namedGroups(re: RegExp): string[] {
  return [...re.source.matchAll(/\(\?<([A-Za-z_][A-Za-z0-9_]*)>/g)].map((m) => m[1]);
}

function groupsOf(m: RegExpExecArray): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.groups ?? {})) if (v !== undefined) out[k] = v;
  return out;
}

/**
 * Compile one recipient pattern; throws with a reason on a bad one (a config error).
 * - `/…/flags`: a regex on the whole normalised address; named groups become captures.
 * - `{name}`: a template; each placeholder matches one run of characters without `+` or `@`,
 *   so `ogo+{objectId}@x` does not swallow `ogo+wf+7@x`.
 * - `*` / `?`: a glob within the address (never across `@`); `*` alone matches every address.
 * - else: an exact address. Exact, glob and template compare case-insensitively.
 */
export function compileRecipientPattern(source: string): RecipientPattern {
  const re = parseSlashRegex(source) ?? (PYTHON_GROUP.test(source) ? bareRegex(source) : null);
  if (re) {
    return {
      kind: 'regex',
      source,
      captures: namedGroups(re),
      match(address) {
        const m = re.exec(parseAddress(address).address);
        return m ? groupsOf(m) : null;
      },
    };
  }
  if (source === '*') return { kind: 'any', source, captures: [], match: () => ({}) };
  if (/[{}]/.test(source)) {
    const names: string[] = [];
    const body = source.replace(/\{([^{}]*)\}|[^{}]+|[{}]/g, (tok, name: string | undefined) => {
      if (name === undefined) {
        if (tok === '{' || tok === '}') throw new Error(`unbalanced brace in address template '${source}'`);
        return escapeRegex(tok);
      }
      if (!CAPTURE_NAME.test(name)) throw new Error(`bad placeholder '{${name}}' in '${source}'`);
      if (names.includes(name)) throw new Error(`placeholder '{${name}}' used twice in '${source}'`);
      names.push(name);
      return `(?<${name}>[^@+]+)`;
    });
    const tre = new RegExp(`^${body}$`, 'i');
    return {
      kind: 'template',
      source,
      captures: names,
      match(address) {
        const m = tre.exec(parseAddress(address).address);
        return m ? groupsOf(m) : null;
      },
    };
  }
  if (/[*?]/.test(source)) {
    const body = [...source]
      .map((c) => (c === '*' ? '[^@]*' : c === '?' ? '[^@]' : escapeRegex(c)))
      .join('');
    const gre = new RegExp(`^${body}$`, 'i');
    return { kind: 'glob', source, captures: [], match: (a) => (gre.test(parseAddress(a).address) ? {} : null) };
  }
  const want = parseAddress(source).address.toLowerCase();
  return {
    kind: 'exact',
    source,
    captures: [],
    match: (a) => (parseAddress(a).address.toLowerCase() === want ? {} : null),
  };
}
