import { mailError } from '../core/errors.js';
import type { RcptContext, RcptVerdict, RecipientCheck } from '../core/message.js';

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
  const serves = servesDomain(domains);
  return async (rcpt) => {
    if (serves(domainOf(rcpt))) return;
    throw mailError('RELAY_DENIED', `Relay access denied: we do not accept mail for <${rcpt}>`);
  };
}

/** Whether a (lower-cased) domain is one of `domains` or under a '.suffix' of them; no domains: every one. */
function servesDomain(domains: string[]): (domain: string) => boolean {
  const exact = new Set(domains.filter((d) => !d.startsWith('.')).map((d) => d.toLowerCase()));
  const suffixes = domains.filter((d) => d.startsWith('.')).map((d) => d.toLowerCase());
  if (!exact.size && !suffixes.length) return () => true;
  return (d) => exact.has(d) || suffixes.some((s) => d.endsWith(s));
}

/**
 * Whether `rcpt` is the postmaster of a domain we serve, or bare `postmaster` (RFC 5321 §4.1.1.3
 * lets the domain be left out for it). The local part is compared case-insensitively, as the
 * RFC requires for this one name.
 */
export function postmasterOf(domains: string[]): (rcpt: string) => boolean {
  const serves = servesDomain(domains);
  return (rcpt) => {
    const at = rcpt.lastIndexOf('@');
    const local = at < 0 ? rcpt : rcpt.slice(0, at);
    return local.toLowerCase() === 'postmaster' && (at < 0 || serves(domainOf(rcpt)));
  };
}

/**
 * RFC 5321 §4.5.1: every domain we take mail for must accept mail for its postmaster, whatever
 * the routes say (a sender whose mail we refused must be able to ask why). Postmaster mail
 * passes before `check`; where it goes is intake's postmaster alias, else it is kept unrouted.
 */
export function acceptPostmaster(domains: string[], check: RecipientCheck): RecipientCheck {
  const isPostmaster = postmasterOf(domains);
  return async (rcpt, ctx) => (isPostmaster(rcpt) ? {} : check(rcpt, ctx));
}

/** Run checks in order; the first to throw decides. */
export function allChecks(...checks: RecipientCheck[]): RecipientCheck {
  return async (rcpt, ctx) => {
    let verdict: RcptVerdict = {};
    for (const c of checks) verdict = mergeVerdicts(verdict, await c(rcpt, ctx));
    return verdict;
  };
}
