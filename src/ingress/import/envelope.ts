import type { HeaderLine } from '../../core/message.js';
import { mailError } from '../../core/errors.js';
import { firstAddress } from '../pipe-source.js';

/** Every address in a header value: the <bracketed> ones, else the bare ones ('a@b, Jan <c@d>' → both). */
export function addressesIn(value: string): string[] {
  const out: string[] = [];
  // A display name may hold anything, also an '@': drop quoted strings and comments first.
  const plain = value.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\((?:[^()\\]|\\.)*\)/g, ' ');
  for (const part of plain.split(',')) {
    const bracketed = /<([^<>\s]+@[^<>\s]+)>/.exec(part);
    const bare = bracketed ? bracketed[1] : /^\s*([^\s<>",;:]+@[^\s<>",;:]+)\s*$/.exec(part)?.[1];
    if (bare) out.push(bare);
  }
  return out;
}

function values(headers: HeaderLine[], name: string): string[] {
  return headers.filter(([k]) => k.toLowerCase() === name).map(([, v]) => v);
}

/**
 * The envelope of an imported message, as an MTA's local delivery left it in the message:
 * recipients from --to, else X-Original-To: (Postfix: the address before aliasing), else
 * Delivered-To: (Postfix, Dovecot LDA, qmail), else To:; the sender from --from, else
 * Return-Path: (RFC 5321 §4.4: added at final delivery), else the mbox From_ line's, else <>.
 * Every occurrence counts: a message delivered to two local recipients may carry two.
 */
export function importEnvelope(
  headers: HeaderLine[],
  given: { from?: string; to?: readonly string[]; fromLineSender?: string },
): { mailFrom: string; rcptTo: string[] } {
  let rcptTo = given.to?.length ? [...given.to] : [];
  for (const name of ['x-original-to', 'delivered-to', 'to']) {
    if (rcptTo.length) break;
    rcptTo = values(headers, name).flatMap(addressesIn);
  }
  rcptTo = [...new Set(rcptTo)];
  if (!rcptTo.length) throw mailError('NO_RECIPIENT', 'No recipient: the message has no X-Original-To:, Delivered-To: or To: address; give --to');
  const returnPath = values(headers, 'return-path')[0];
  const mailFrom = given.from ?? (returnPath !== undefined ? (firstAddress(returnPath) ?? '') : (given.fromLineSender ?? ''));
  return { mailFrom, rcptTo };
}
