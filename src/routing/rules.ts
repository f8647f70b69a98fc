import type { lookup } from 'node:dns/promises';
import type { AddressLike } from '../core/delivery.js';
import { mailError, type MailError } from '../core/errors.js';
import type { HeaderLine, StoredPart } from '../core/message.js';
import { clientList } from '../net/client-list.js';
import { decodeWords } from '../mime/header-sniff.js';
import type { AuthVerdict } from '../core/auth.js';
import { compileRecipientPattern, compileRegex, parseAddress, type RecipientPattern } from './address.js';

export { compileRegex };
import type { Route } from './schema.js';

/**
 * One route's conditions, compiled. Conditions fall in two groups: those the envelope decides
 * (recipient, envelope sender, null sender, client, authenticated user), which run at RCPT time
 * so a sender hears 550 while it still holds the message; and those that need the content
 * (headers, From:, size, attachment types), which run after DATA and pass at RCPT time.
 */

/** What is known at RCPT time. */
export interface EnvelopeFacts {
  /** '' for the null sender <>. */
  mailFrom: string;
  clientIp?: string | null;
  authUser?: string | null;
  /** With the null sender, the From: address when the ingress read it before asking (the pipe). */
  headerFrom?: string;
}

/** What is known once the message is parsed. */
export interface ContentFacts {
  headers: HeaderLine[];
  size: number;
  parts: StoredPart[];
  from: AddressLike[];
  /** What parsing found wrong (core/mime-defects.ts); absent counts as none. */
  defects?: readonly string[];
  /** The message could not be parsed at all (kept as raw): malformed, whatever `defects` says. */
  unparsable?: boolean;
  /** Sender authentication verdict; absent or null: not verified (no auth condition holds). */
  auth?: AuthVerdict | null;
}

export interface CompiledRoute {
  route: Route;
  name: string;
  /** `anonymous: ignore`: the null sender is accepted and this route delivers nothing. */
  ignoresNullSender: boolean;
  /** Some condition needs the content: at RCPT time the route can only say "maybe". */
  waitsForData: boolean;
  /** Captures of the recipient, or null when no recipient pattern matches. */
  matchRecipient(rcpt: string): Record<string, string> | null;
  /** Null when the envelope may use this route; else the refusal (550 5.7.1). */
  checkEnvelope(f: EnvelopeFacts): Promise<MailError | null>;
  /** Null when the content satisfies the route; else why not (for logs). */
  checkContent(f: ContentFacts): string | null;
  /** The route's authFailure action and why, when the verdict fails what it requires; else null. */
  authFailing(v: AuthVerdict | null | undefined): { action: 'refuse' | 'quarantine'; error: MailError } | null;
}

const list = <T>(v: T | T[]): T[] => [v].flat() as T[];

/** Why an auth match condition does not hold for a verdict, or null when it holds. */
export function unmetAuth(m: NonNullable<Route['match']['auth']>, v: AuthVerdict | null | undefined): string | null {
  if (!v) return 'no authentication verdict';
  if (m.spf && !list(m.spf).includes(v.spf?.result ?? 'none')) return `spf=${v.spf?.result ?? 'none'}`;
  if (m.dmarc && !list(m.dmarc).includes(v.dmarc?.result ?? 'none')) return `dmarc=${v.dmarc?.result ?? 'none'}`;
  if (m.arc && !list(m.arc).includes(v.arc?.result ?? 'none')) return `arc=${v.arc?.result ?? 'none'}`;
  if (m.dkim) {
    const want = Array.isArray(m.dkim) || typeof m.dkim === 'string' ? { result: m.dkim, domain: undefined } : m.dkim;
    const results = list(want.result);
    const domain = want.domain?.toLowerCase().replace(/\.$/, '');
    const sigs = domain ? v.dkim.filter((d) => d.domain.toLowerCase() === domain) : v.dkim;
    // An unsigned message (or none from that domain) is dkim=none (RFC 8601 §2.7.1).
    const hit = sigs.length ? sigs.some((d) => results.includes(d.result)) : results.includes('none');
    if (!hit) return `no DKIM signature${domain ? ` from ${domain}` : ''} with ${results.join('|')}`;
  }
  return null;
}

/**
 * The refusal for a verdict that fails what a route requires, or null. temperror and
 * permerror of our own lookups are not failures of the sender: refusing them would turn a DNS
 * outage into lost mail. DMARC fails only under a published p=quarantine or p=reject: p=none
 * asks receivers to take no action (RFC 7489 §6.3).
 */
export function authRefusal(v: AuthVerdict | null | undefined, require: readonly string[]): MailError | null {
  if (!v) return null;
  if (require.includes('dmarc') && v.dmarc?.result === 'fail' && v.dmarc.policy && v.dmarc.policy !== 'none') {
    return mailError('DMARC_FAILED', `Message rejected: ${v.dmarc.domain ?? 'the sender domain'} publishes DMARC p=${v.dmarc.policy} and the message fails it (no aligned SPF or DKIM pass)`);
  }
  if (require.includes('spf') && v.spf?.result === 'fail') {
    return mailError('SENDER_AUTH_FAILED', `SPF fail: ${v.spf.domain ?? 'the sender domain'} does not permit this client to send its mail`);
  }
  if (require.includes('dkim') && v.dkim.length && !v.dkim.some((d) => d.result === 'pass')) {
    return mailError('SENDER_AUTH_FAILED', `DKIM fail: no valid signature (${v.dkim.map((d) => `${d.domain || '?'}: ${d.result}`).join(', ')})`);
  }
  if (require.includes('arc') && v.arc?.result === 'fail') return mailError('SENDER_AUTH_FAILED', 'ARC fail: the ARC chain does not validate');
  return null;
}

/** Kinds whose routes refuse the null sender by default: a delivery report has nobody to answer. */
const ANONYMOUS_REJECT_KINDS = new Set(['spool', 'webhook']);

/** `image/*` matches `image/png`; `*​/*` everything; case-insensitive (RFC 2045 §5.1). */
export function mimeMatches(pattern: string, type: string): boolean {
  const [pt, ps] = pattern.toLowerCase().split('/');
  const [t, s] = type.toLowerCase().split(';')[0].trim().split('/');
  return (pt === '*' || pt === t) && (ps === '*' || ps === s);
}

function senderFilter(allow: RegExp[] | undefined, deny: RegExp[]): (address: string) => boolean {
  return (address) => (!allow || allow.some((r) => r.test(address))) && !deny.some((r) => r.test(address));
}

/** Compile a validated route; `resolve` is the DNS lookup for host names in `clients`. */
export function compileRoute(route: Route, resolve?: typeof lookup): CompiledRoute {
  const m = route.match;
  const patterns: RecipientPattern[] = m.recipient === undefined ? [] : [m.recipient].flat().map(compileRecipientPattern);
  const senderOk = m.sender ? senderFilter(m.sender.allow?.map(compileRegex), m.sender.deny.map(compileRegex)) : () => true;
  const clients = m.clients ? clientList(m.clients, resolve) : undefined;
  const anonymous =
    m.anonymous ?? (route.deliver.some((d) => ANONYMOUS_REJECT_KINDS.has(d.kind)) ? 'reject' : 'accept');
  const headers = (m.header ?? []).map((h) => ({ name: h.name.toLowerCase(), re: compileRegex(h.match) }));
  const attachments = m.attachment === undefined ? [] : [m.attachment].flat();
  const fromCheck = !!m.sender?.from;
  const defectNames = typeof m.defects === 'boolean' || m.defects === undefined ? undefined : [m.defects].flat();
  return {
    route,
    name: route.name,
    ignoresNullSender: anonymous === 'ignore',
    waitsForData: fromCheck || headers.length > 0 || m.size !== undefined || attachments.length > 0 || m.defects !== undefined || m.auth !== undefined,
    matchRecipient(rcpt) {
      if (!patterns.length) return {};
      for (const p of patterns) {
        const caps = p.match(rcpt);
        if (caps) return caps;
      }
      return null;
    },
    async checkEnvelope(f) {
      if (!f.mailFrom) {
        if (anonymous === 'reject') return mailError('SENDER_DENIED', 'Null sender not accepted for this recipient');
      } else if (!senderOk(parseAddress(f.mailFrom).address)) {
        return mailError('SENDER_DENIED', `Sender <${f.mailFrom}> not allowed for this recipient`);
      }
      if (clients && !(f.clientIp && (await clients.matches(f.clientIp)))) {
        // No client address (pipe, IMAP fetch) fails closed: the operator asked for a network check.
        return mailError('NOT_AUTHORISED', `Client ${f.clientIp ?? '(unknown)'} not allowed to send to this recipient`);
      }
      if (m.authenticated === true && !f.authUser) return mailError('NOT_AUTHORISED', 'Authentication required for this recipient');
      if (m.authenticated === false && f.authUser) return mailError('NOT_AUTHORISED', 'Not for authenticated senders');
      if (m.users && !(f.authUser && m.users.includes(f.authUser))) {
        return mailError('NOT_AUTHORISED', `User ${f.authUser ?? '(anonymous)'} not allowed to send to this recipient`);
      }
      return null;
    },
    checkContent(f) {
      if (fromCheck) {
        if (!f.from.length && m.sender?.allow) return 'no From: address to check';
        const bad = f.from.find((a) => !senderOk(parseAddress(a.address).address));
        if (bad) return `From: <${bad.address}> not allowed`;
      }
      for (const h of headers) {
        const hit = f.headers.some(([name, value]) => name.toLowerCase() === h.name && h.re.test(decodeWords(value)));
        if (!hit) return `no ${h.name} header matching ${h.re}`;
      }
      if (m.size?.min !== undefined && f.size < m.size.min) return `size ${f.size} < ${m.size.min}`;
      if (m.size?.max !== undefined && f.size > m.size.max) return `size ${f.size} > ${m.size.max}`;
      if (attachments.length) {
        const hit = f.parts.some(
          (p) => (p.kind === 'attachment' || p.kind === 'inline') && attachments.some((a) => mimeMatches(a, p.contentType)),
        );
        if (!hit) return `no attachment of type ${attachments.join(', ')}`;
      }
      const found = f.defects ?? [];
      const malformed = found.length > 0 || !!f.unparsable;
      if (m.defects === true && !malformed) return 'the message has no defects';
      if (m.defects === false && malformed) return `the message is malformed (${f.unparsable ? 'not parsable' : found.join(', ')})`;
      if (defectNames && !found.some((d) => (defectNames as readonly string[]).includes(d))) return `no defect ${defectNames.join(', ')}`;
      if (m.auth) {
        const unmet = unmetAuth(m.auth, f.auth);
        if (unmet) return `auth: ${unmet}`;
      }
      return null;
    },
    authFailing(v) {
      if (!route.authFailure) return null;
      const error = authRefusal(v, route.authFailure.require);
      return error ? { action: route.authFailure.action, error } : null;
    },
  };
}
