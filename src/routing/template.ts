import { parseSlashRegex } from './address.js';

/**
 * The one template language (control files, payload templates, file names). It is data, not
 * code: `<%name%>` reads a variable, `<%a|b|'literal'%>` takes the first non-empty, `<%now:%Y%>`
 * formats the time, `<%subject~/ID:(\d+)/%>` extracts with a regex. Everything else inside
 * `<% %>` is a syntax error at config load; everything outside is text. Nothing is ever
 * evaluated, so `<%__import__('os').system('id')%>` fails to compile and `${process.exit()}`
 * or `{{constructor.constructor(…)}}` are just characters.
 */

/** The variables every template may name, besides the route's captures. */
export const TEMPLATE_VARIABLES = [
  // The envelope sender (MAIL FROM), as in the fax gateway's table; the recipient is `recipient`.
  'address',
  'recipient',
  'app',
  'format',
  'messageFromAddress',
  'messageFromName',
  'messageReplyToAddress',
  'messageReplyToName',
  'msgFileName',
  'pri',
  'subject',
  'msg',
  'attachmentFiles',
  'sender',
  'messageId',
  'id',
] as const;

type Term =
  | { kind: 'var'; name: string; extract?: RegExp }
  | { kind: 'literal'; value: string }
  | { kind: 'now'; format: string | null };

type Piece = string | Term[];

/** What a render sees: variable values (missing ≡ empty) and the time `now` formats. */
export interface TemplateContext {
  vars: Readonly<Record<string, string | null | undefined>>;
  now?: Date;
}

/** A compiled template. */
export interface Template {
  source: string;
  /** Variable names it reads (for checks against what a route can provide). */
  variables: string[];
  render(ctx: TemplateContext): string;
}

/**
 * A template that does not compile; `offset` is where in the source. Internal, not a MailError:
 * the config schema compiles every template (routes' params, spool targets) and reports this as
 * a config problem, so it stops a start, never a delivery; at delivery only templates that
 * compiled then are compiled again.
 */
export class TemplateError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'TemplateError';
  }
}

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;
const STRFTIME = new Set([...'aAbBcdeHIjmMpSxXyYzZFTs%']);

/** Read a `/regex/flags` starting at src[i] === '/'; returns the RegExp and the index after it. */
function readRegex(src: string, i: number): [RegExp, number] {
  let j = i + 1;
  let inClass = false;
  for (; j < src.length; j++) {
    const c = src[j];
    if (c === '\\') j++;
    else if (c === '[') inClass = true;
    else if (c === ']') inClass = false;
    else if (c === '/' && !inClass) break;
  }
  if (j >= src.length) throw new TemplateError('unterminated regex', i);
  let k = j + 1;
  while (k < src.length && /[a-z]/.test(src[k])) k++;
  try {
    return [parseSlashRegex(src.slice(i, k))!, k];
  } catch (e) {
    throw new TemplateError((e as Error).message, i);
  }
}

/** Read a single-quoted literal ('' or \' for a quote); returns the value and the index after it. */
function readLiteral(src: string, i: number): [string, number] {
  let out = '';
  for (let j = i + 1; j < src.length; j++) {
    const c = src[j];
    if (c === '\\' && j + 1 < src.length) out += src[++j];
    else if (c === "'") return [out, j + 1];
    else out += c;
  }
  throw new TemplateError('unterminated literal', i);
}

/** Parse the inside of one `<% … %>` starting at `i`; returns the terms and the index after `%>`. */
function parseExpr(src: string, i: number, known?: ReadonlySet<string>): [Term[], number] {
  const terms: Term[] = [];
  const skipWs = () => {
    while (src[i] === ' ' || src[i] === '\t') i++;
  };
  for (;;) {
    skipWs();
    if (src[i] === "'") {
      const [value, next] = readLiteral(src, i);
      terms.push({ kind: 'literal', value });
      i = next;
    } else {
      IDENT.lastIndex = i;
      const m = IDENT.exec(src);
      if (!m) throw new TemplateError(`expected a variable name or 'literal' at '${src.slice(i, i + 20)}'`, i);
      const name = m[0];
      i = IDENT.lastIndex;
      if (name === 'now') {
        let format: string | null = null;
        if (src[i] === ':') {
          // The strftime format runs to the closing %>: formats contain % but never %>.
          const end = src.indexOf('%>', i + 1);
          if (end < 0) throw new TemplateError('unterminated <%', i);
          format = src.slice(i + 1, end);
          checkStrftime(format, i + 1);
          i = end;
        }
        terms.push({ kind: 'now', format });
      } else {
        if (known && !known.has(name)) throw new TemplateError(`unknown variable '${name}'`, i - name.length);
        skipWs();
        let extract: RegExp | undefined;
        if (src[i] === '~') {
          i++;
          skipWs();
          if (src[i] !== '/') throw new TemplateError("expected /regex/ after '~'", i);
          [extract, i] = readRegex(src, i);
        }
        terms.push({ kind: 'var', name, extract });
      }
    }
    skipWs();
    if (src.startsWith('%>', i)) return [terms, i + 2];
    if (src[i] !== '|') {
      throw new TemplateError(
        i >= src.length ? 'unterminated <%' : `unexpected '${src.slice(i, i + 20)}' (only names, 'literals', now:FORMAT, name~/regex/ and | are allowed)`,
        i,
      );
    }
    i++;
  }
}

function checkStrftime(format: string, offset: number): void {
  for (let i = 0; i < format.length; i++) {
    if (format[i] !== '%') continue;
    const c = format[++i];
    if (!STRFTIME.has(c)) throw new TemplateError(`unknown time conversion '%${c ?? ''}'`, offset + i - 1);
  }
}

/**
 * Compile a template. With `known`, a name outside it (and outside TEMPLATE_VARIABLES) is an
 * error too, so a typo fails at config load rather than rendering empty.
 */
export function compileTemplate(source: string, known?: Iterable<string>): Template {
  const knownSet = known ? new Set([...TEMPLATE_VARIABLES, ...known]) : undefined;
  const pieces: Piece[] = [];
  let i = 0;
  while (i < source.length) {
    const open = source.indexOf('<%', i);
    if (open < 0) {
      pieces.push(source.slice(i));
      break;
    }
    if (open > i) pieces.push(source.slice(i, open));
    const [terms, next] = parseExpr(source, open + 2, knownSet);
    pieces.push(terms);
    i = next;
  }
  const variables = [
    ...new Set(pieces.flatMap((p) => (typeof p === 'string' ? [] : p.flatMap((t) => (t.kind === 'var' ? [t.name] : []))))),
  ];
  return {
    source,
    variables,
    render(ctx) {
      const now = ctx.now ?? new Date();
      let out = '';
      for (const p of pieces) out += typeof p === 'string' ? p : evalChain(p, ctx.vars, now);
      return out;
    },
  };
}

function evalChain(terms: Term[], vars: TemplateContext['vars'], now: Date): string {
  for (const t of terms) {
    let v: string;
    if (t.kind === 'literal') v = t.value;
    else if (t.kind === 'now') v = t.format === null ? now.toISOString() : strftime(now, t.format);
    else {
      // Own properties only: `constructor` or `__proto__` must not reach Object.prototype.
      const raw = Object.hasOwn(vars, t.name) ? vars[t.name] : undefined;
      v = raw ?? '';
      if (t.extract && v) {
        const m = t.extract.exec(v);
        v = m ? (m.slice(1).find((g) => g !== undefined) ?? m[0]) : '';
      }
    }
    if (v !== '') return v;
  }
  return '';
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/**
 * The zone's abbreviation as tzdata has it (CET, EST, UTC), which is what Python's %Z gives:
 * Intl knows American names under en-US and European ones under en-GB and says GMT+1 for
 * the others, so the first that is not such an offset is taken.
 */
function zoneName(d: Date): string {
  let last = '';
  for (const locale of ['en-US', 'en-GB']) {
    last = Intl.DateTimeFormat(locale, { timeZoneName: 'short' }).formatToParts(d).find((x) => x.type === 'timeZoneName')?.value ?? '';
    if (!/^GMT[+-]/.test(last)) return last;
  }
  return last;
}

/** strftime over the local time zone, for the conversions in STRFTIME. */
export function strftime(d: Date, format: string): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const conv: Record<string, () => string> = {
    a: () => DAYS[d.getDay()].slice(0, 3),
    A: () => DAYS[d.getDay()],
    b: () => MONTHS[d.getMonth()].slice(0, 3),
    B: () => MONTHS[d.getMonth()],
    d: () => p(d.getDate()),
    e: () => String(d.getDate()).padStart(2, ' '),
    H: () => p(d.getHours()),
    I: () => p(((d.getHours() + 11) % 12) + 1),
    j: () => p(Math.floor((Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) - Date.UTC(d.getFullYear(), 0, 1)) / 86_400_000) + 1, 3),
    m: () => p(d.getMonth() + 1),
    M: () => p(d.getMinutes()),
    p: () => (d.getHours() < 12 ? 'AM' : 'PM'),
    S: () => p(d.getSeconds()),
    y: () => p(d.getFullYear() % 100),
    Y: () => String(d.getFullYear()),
    z: () => `${off < 0 ? '-' : '+'}${p(Math.floor(Math.abs(off) / 60))}${p(Math.abs(off) % 60)}`,
    Z: () => zoneName(d),
    F: () => `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`,
    T: () => `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`,
    s: () => String(Math.floor(d.getTime() / 1000)),
    // The C locale's forms, as Python's time.strftime gives them where the fax gateway ran.
    x: () => `${p(d.getMonth() + 1)}/${p(d.getDate())}/${p(d.getFullYear() % 100)}`,
    X: () => `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`,
    c: () => `${DAYS[d.getDay()].slice(0, 3)} ${MONTHS[d.getMonth()].slice(0, 3)} ${String(d.getDate()).padStart(2, ' ')} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${d.getFullYear()}`,
    '%': () => '%',
  };
  return format.replace(/%(.)/gs, (all, c: string) => conv[c]?.() ?? all);
}
