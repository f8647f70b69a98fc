import type { lookup } from 'node:dns/promises';
import type { AddressLike } from '../core/delivery.js';
import { mailError, type MailError } from '../core/errors.js';
import type { HeaderLine, StoredPart } from '../core/message.js';
import { clientList } from '../net/client-list.js';
import { decodeWords } from '../mime/header-sniff.js';
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
    waitsForData: fromCheck || headers.length > 0 || m.size !== undefined || attachments.length > 0 || m.defects !== undefined,
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
      return null;
    },
  };
}
