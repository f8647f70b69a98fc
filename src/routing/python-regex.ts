/**
 * Regexes written in Python's `re` syntax, as the fax/SMS gateway Postroom replaces takes them
 * (`(?P<number>\+?\d+)@fax`), turned into JavaScript ones. Only what has an exact JavaScript
 * equivalent is translated; every other Python-only construct is refused with its name, so an
 * operator never gets a regex that silently matches something else (or V8's bare
 * `Invalid group`).
 */

/** A Python construct that has no JavaScript equivalent; `offset` is where in the source. */
export class PythonRegexError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'PythonRegexError';
  }
}

/** A translated source and the flags its leading `(?ims)` asked for. */
export interface Translated {
  source: string;
  flags: string;
}

const GROUP_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Python's global inline flags, and the JavaScript flag each is (null: none). */
const INLINE_FLAGS: Record<string, string | null> = { i: 'i', m: 'm', s: 's', a: null, L: null, u: null, x: null, t: null };

/**
 * Translate a Python regex source: `(?P<name>…)` → `(?<name>…)`, `(?P=name)` → `\k<name>`,
 * `(?#comment)` dropped, a leading `(?i)`/`(?m)`/`(?s)` → flags, `\A` and `\Z` → the
 * start/end-of-input assertions they are in Python whatever the flags. JavaScript syntax
 * passes unchanged. Throws PythonRegexError for scoped flags `(?i:…)`, conditionals
 * `(?(1)…)`, atomic groups `(?>…)`, possessive quantifiers and the flags a, L, u, x.
 */
export function translatePythonRegex(src: string): Translated {
  let out = '';
  let flags = '';
  let inClass = false;
  let i = 0;
  // A possessive quantifier (Python 3.11): `a*+`, `a++`, `a?+`, `a{2}+`.
  const possessive = (at: number) => {
    throw new PythonRegexError(`possessive quantifier '${src.slice(at - 1, at + 1)}' has no JavaScript equivalent`, at);
  };
  while (i < src.length) {
    const c = src[i];
    if (c === '\\') {
      const n = src[i + 1];
      if (n === undefined) throw new PythonRegexError('pattern ends with a lone backslash', i);
      if (!inClass && n === 'A') out += '(?<![\\s\\S])';
      else if (!inClass && n === 'Z') out += '(?![\\s\\S])';
      else out += c + n;
      i += 2;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      out += c;
      i++;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      i++;
      continue;
    }
    if ((c === '*' || c === '+' || c === '?') && src[i + 1] === '+') possessive(i + 1);
    if (c === '}' && src[i + 1] === '+' && /\{\d*,?\d*$/.test(out)) possessive(i + 1);
    // Python reads `{,n}` as `{0,n}`; JavaScript (without u) as the literal text `{,n}`.
    if (c === '{' && /^\{,\d+\}/.test(src.slice(i))) {
      out += '{0';
      i++;
      continue;
    }
    if (c === '(' && src[i + 1] === '?') {
      const rest = src.slice(i + 2);
      let m: RegExpExecArray | null;
      if ((m = /^P<([^>]*)>/.exec(rest))) {
        if (!GROUP_NAME.test(m[1])) throw new PythonRegexError(`group name '${m[1]}' must be letters, digits and _ (not starting with a digit)`, i);
        out += `(?<${m[1]}>`;
        i += 2 + m[0].length;
        continue;
      }
      if ((m = /^P=([^)]*)\)/.exec(rest))) {
        if (!GROUP_NAME.test(m[1])) throw new PythonRegexError(`backreference name '${m[1]}' must be letters, digits and _`, i);
        out += `\\k<${m[1]}>`;
        i += 2 + m[0].length;
        continue;
      }
      if (rest.startsWith('P')) throw new PythonRegexError(`unknown Python group '(?P${rest.slice(1, 2)}' (only (?P<name>…) and (?P=name))`, i);
      if ((m = /^#[^)]*\)/.exec(rest))) {
        i += 2 + m[0].length;
        continue;
      }
      if ((m = /^([A-Za-z]+)([:)])/.exec(rest)) && [...m[1]].every((f) => f in INLINE_FLAGS)) {
        if (m[2] === ':') throw new PythonRegexError(`scoped inline flags '(?${m[1]}:…)' have no JavaScript equivalent in Node 20; set the flags of the whole pattern (/…/i)`, i);
        if (out !== '') throw new PythonRegexError(`inline flags '(?${m[1]})' must start the pattern`, i);
        for (const f of m[1]) {
          const js = INLINE_FLAGS[f];
          if (js === null) throw new PythonRegexError(`inline flag '${f}' has no JavaScript equivalent`, i);
          if (!flags.includes(js)) flags += js;
        }
        i += 2 + m[0].length;
        continue;
      }
      if ((m = /^-?[A-Za-z]+(?:-[A-Za-z]*)?:/.exec(rest))) {
        throw new PythonRegexError(`scoped inline flags '(?${m[0]}…)' have no JavaScript equivalent in Node 20`, i);
      }
      if (rest.startsWith('(')) throw new PythonRegexError("conditional group '(?(…)yes|no)' has no JavaScript equivalent", i);
      if (rest.startsWith('>')) throw new PythonRegexError("atomic group '(?>…)' has no JavaScript equivalent", i);
      // (?: (?= (?! (?<= (?<! (?<name>: the same in both; the `?` is no quantifier.
      out += '(?';
      i += 2;
      continue;
    }
    out += c;
    i++;
  }
  return { source: out, flags };
}

/** Translate and compile, adding `extraFlags`; throws PythonRegexError or the SyntaxError of the result. */
export function compilePythonRegex(src: string, extraFlags = ''): RegExp {
  const t = translatePythonRegex(src);
  return new RegExp(t.source, [...new Set(t.flags + extraFlags)].join(''));
}
