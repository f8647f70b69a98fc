import { mailError } from '../core/errors.js';

/** What is known of a session when a recipient is offered (RCPT TO, or its equivalent). */
export interface RcptContext {
  ingress: string;
  mailFrom: string;
  /** Recipients already accepted in this transaction. */
  accepted: string[];
  clientIp?: string;
  clientHostname?: string;
  authUser?: string;
  /** The client is inside the listener's allowlist (or authenticated). */
  trusted: boolean;
}

/** What accepting a recipient asks of the message that follows (checked while DATA streams). */
export interface RcptVerdict {
  /** A target of this recipient refuses mail without Message-ID (folders): 550 5.6.0 at DATA. */
  requireMessageId?: boolean;
}

/**
 * Decides, before any data is sent, whether a recipient is taken. Throws a MailError
 * (550 5.1.1 unknown, 554 5.7.1 relay, 550 5.7.1 not allowed); resolves to accept, with what
 * the message must then satisfy. Routing adds its own check after the listener's domain check.
 */
export type RecipientCheck = (rcpt: string, ctx: RcptContext) => Promise<RcptVerdict | void>;

/** Fold the verdicts of a transaction's recipients: a requirement of any one holds for the message. */
export function mergeVerdicts(a: RcptVerdict | void, b: RcptVerdict | void): RcptVerdict {
  return { requireMessageId: !!(a?.requireMessageId || b?.requireMessageId) };
}

/** The domain part of an address, lower-cased ('' when there is none). */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

/**
 * Recipients are taken for the configured domains (and their subdomains when written
 * '.example.org'); others are relaying, which we never do. No domains: every recipient is kept
 * (the embedded default, listening on loopback only).
 */
export function domainCheck(domains: string[]): RecipientCheck {
  const exact = new Set(domains.filter((d) => !d.startsWith('.')).map((d) => d.toLowerCase()));
  const suffixes = domains.filter((d) => d.startsWith('.')).map((d) => d.toLowerCase());
  return async (rcpt) => {
    if (!exact.size && !suffixes.length) return;
    const d = domainOf(rcpt);
    if (exact.has(d) || suffixes.some((s) => d.endsWith(s))) return;
    throw mailError('RELAY_DENIED', `Relay access denied: we do not accept mail for <${rcpt}>`);
  };
}

/** Run checks in order; the first to throw decides. */
export function allChecks(...checks: RecipientCheck[]): RecipientCheck {
  return async (rcpt, ctx) => {
    let verdict: RcptVerdict = {};
    for (const c of checks) verdict = mergeVerdicts(verdict, await c(rcpt, ctx));
    return verdict;
  };
}
