import { AUTH_RESULTS, type AuthResult, type AuthVerdict, type DkimVerdict } from '../core/auth.js';
import type { HeaderLine } from '../core/message.js';

/**
 * Authentication-Results (RFC 8601): the header we write from a verdict, a parser for the ones
 * upstream hosts wrote, and the renaming of inbound ones that claim our name (§5: a receiver
 * must not let a sender forge its verdict, so Haraka and others rename them).
 */

/** One `method=result` clause of an Authentication-Results header. */
export interface ResInfo {
  method: string;
  result: string;
  reason?: string;
  /** `ptype.property` (lower case) → value, e.g. `header.d` → `example.com`. */
  props: Record<string, string>;
  /** Comment text inside the clause, without the parentheses (RFC 8601 §2.2 CFWS). */
  comments: string[];
}

export interface ParsedAuthResults {
  authservId: string;
  results: ResInfo[];
}

/** Characters of an RFC 2045 token (the value grammar RFC 8601 §2.2 borrows), plus @ for smtp.mailfrom. */
const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`{|}~@-]+$/;

/** A value safe to write into our header: a token as is, else a quoted-string with no control characters. */
function value(v: string): string {
  // Domains and selectors come from the message (d=, s=, From:): no CR, LF or other controls may reach a header.
  const clean = v.replace(/[\x00-\x1f\x7f]/g, '');
  if (clean && TOKEN.test(clean)) return clean;
  return `"${clean.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** Our Authentication-Results header for a verdict, folded, with CRLF. */
export function authResultsHeader(v: AuthVerdict): string {
  const parts: string[] = [];
  if (v.spf) parts.push(`spf=${v.spf.result}${v.spf.domain ? ` smtp.mailfrom=${value(v.spf.domain)}` : ''}`);
  for (const d of v.dkim) parts.push(`dkim=${d.result}${d.domain ? ` header.d=${value(d.domain)}` : ''}${d.selector ? ` header.s=${value(d.selector)}` : ''}`);
  if (!v.dkim.length) parts.push('dkim=none');
  if (v.arc) parts.push(`arc=${v.arc.result}`);
  if (v.dmarc) {
    const p = v.dmarc.policy && /^[a-z]+$/i.test(v.dmarc.policy) ? ` (p=${v.dmarc.policy})` : '';
    parts.push(`dmarc=${v.dmarc.result}${p}${v.dmarc.domain ? ` header.from=${value(v.dmarc.domain)}` : ''}`);
  }
  return `Authentication-Results: ${value(v.authservId)};\r\n ${parts.join(';\r\n ')}\r\n`;
}

/** Split on `;` outside quoted strings and comments; comments are collected per piece. */
function pieces(text: string): { text: string; comments: string[] }[] {
  const out: { text: string; comments: string[] }[] = [];
  let cur = '';
  let comments: string[] = [];
  let comment = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (depth > 0) {
      if (c === '\\' && i + 1 < text.length) comment += text[++i];
      else if (c === '(') {
        depth++;
        comment += c;
      } else if (c === ')') {
        depth--;
        if (depth === 0) {
          comments.push(comment.trim());
          comment = '';
          cur += ' ';
        } else comment += c;
      } else comment += c;
    } else if (quoted) {
      if (c === '\\' && i + 1 < text.length) cur += text[++i];
      else if (c === '"') {
        quoted = false;
        cur += '\u0001';
      } else cur += c === ' ' ? '\u0002' : c === ';' ? '\u0003' : c === '=' ? '\u0004' : c;
    } else if (c === '"') {
      quoted = true;
      cur += '\u0001';
    } else if (c === '(') depth = 1;
    else if (c === ';') {
      out.push({ text: cur, comments });
      cur = '';
      comments = [];
    } else cur += c;
  }
  out.push({ text: cur, comments });
  return out;
}

/** Undo the placeholders pieces() put in quoted strings. */
const unquote = (s: string) => s.replace(/\u0001/g, '').replace(/\u0002/g, ' ').replace(/\u0003/g, ';').replace(/\u0004/g, '=');

/**
 * Parse one Authentication-Results value (RFC 8601 §2.2). Lenient where senders are (spaces
 * around `=`, a missing final clause); undefined when there is no authserv-id at all.
 */
export function parseAuthResults(raw: string): ParsedAuthResults | undefined {
  const [head, ...rest] = pieces(raw.replace(/\r?\n/g, ' '));
  // A quoted authserv-id may hold spaces (RFC 8601 §2.2 value): no host name does, so it names none.
  const id = unquote(head.text.trim().split(/\s+/)[0] ?? '').trim();
  if (!id || /\s/.test(id)) return undefined;
  const results: ResInfo[] = [];
  for (const p of rest) {
    const tokens = p.text.replace(/\s*=\s*/g, '=').trim().split(/\s+/).filter(Boolean);
    if (!tokens.length || tokens[0].toLowerCase() === 'none') continue;
    const [mr, ...props] = tokens;
    const eq = mr.indexOf('=');
    if (eq <= 0) continue;
    const info: ResInfo = {
      method: mr.slice(0, eq).split('/')[0].toLowerCase(),
      result: unquote(mr.slice(eq + 1)).toLowerCase(),
      props: {},
      comments: p.comments,
    };
    for (const t of props) {
      const e = t.indexOf('=');
      if (e <= 0) continue;
      const k = t.slice(0, e).toLowerCase();
      const val = unquote(t.slice(e + 1));
      if (k === 'reason') info.reason = val;
      else info.props[k] = val;
    }
    results.push(info);
  }
  return { authservId: id.toLowerCase(), results };
}

const asResult = (r: string): AuthResult => ((AUTH_RESULTS as readonly string[]).includes(r) ? (r as AuthResult) : 'permerror');

/**
 * The verdict of the topmost Authentication-Results written by one of `trusted` (RFC 8601 §5:
 * only fields added by hosts inside our boundary are believed; any other may be forged by the
 * sender). Undefined when no trusted host wrote one.
 */
export function trustedResults(lines: readonly HeaderLine[], trusted: readonly string[]): AuthVerdict | undefined {
  if (!trusted.length) return undefined;
  const ids = new Set(trusted.map((t) => t.toLowerCase()));
  for (const [name, val] of lines) {
    if (name.toLowerCase() !== 'authentication-results') continue;
    const parsed = parseAuthResults(val);
    if (parsed && ids.has(parsed.authservId)) return verdictOf(parsed);
  }
  return undefined;
}

function domainOf(s: string | undefined): string | null {
  if (!s) return null;
  return s.split('@').pop()!.toLowerCase() || null;
}

/** A verdict from a parsed header: the first clause of each method, every dkim clause. */
export function verdictOf(p: ParsedAuthResults): AuthVerdict {
  const first = (m: string) => p.results.find((r) => r.method === m);
  const spf = first('spf');
  const dmarc = first('dmarc');
  const arc = first('arc');
  const dkim: DkimVerdict[] = p.results
    .filter((r) => r.method === 'dkim')
    .map((r) => ({
      domain: (r.props['header.d'] ?? domainOf(r.props['header.i']) ?? '').toLowerCase(),
      selector: r.props['header.s'] ?? '',
      result: asResult(r.result),
      ...(r.reason ? { reason: r.reason } : {}),
    }));
  const policy = dmarc?.props['policy.dmarc'] ?? dmarc?.comments.map((c) => /\bp=([a-z]+)/i.exec(c)?.[1]).find(Boolean);
  return {
    source: 'upstream',
    authservId: p.authservId,
    ...(spf ? { spf: { result: asResult(spf.result), domain: domainOf(spf.props['smtp.mailfrom']) ?? spf.props['smtp.helo'] ?? null } } : {}),
    dkim,
    ...(dmarc
      ? {
          dmarc: {
            result: asResult(dmarc.result),
            domain: dmarc.props['header.from']?.toLowerCase() ?? null,
            policy: policy ? policy.toLowerCase() : null,
            alignment: { spf: false, dkim: false },
          },
        }
      : {}),
    ...(arc ? { arc: { result: asResult(arc.result) } } : {}),
  };
}

/**
 * Rename each Authentication-Results field in a header block whose authserv-id is `ours` to
 * X-Original-Authentication-Results (as Haraka does): only our own header, added above, may
 * speak for our host. `block` is the header block with its line ends as they are.
 */
export function renameForged(block: string, ours: string): string {
  const me = ours.toLowerCase();
  // Each field: its first line and its continuation lines (RFC 5322 §2.2.3 folding).
  return block.replace(/^Authentication-Results[ \t]*:((?:[^\n]*\n)(?:[ \t][^\n]*\n)*)/gim, (field, body: string) => {
    const parsed = parseAuthResults(body);
    return parsed && parsed.authservId === me ? `X-Original-${field}` : field;
  });
}
