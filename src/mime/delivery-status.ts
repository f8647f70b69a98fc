import { parseHeaderBlock } from './header-sniff.js';

/**
 * A machine-readable report part as fields: message/delivery-status (RFC 3464 §2.1: the
 * per-message fields, then one block per recipient, blocks apart by blank lines) and
 * message/feedback-report (ARF, RFC 5965 §3.1: one block). Field names keep their case as
 * sent; values are unfolded. Comment-free: `Status: 5.1.1 (bad mailbox)` stays as written.
 */
export interface ReportFields {
  /** The first block: Reporting-MTA, Arrival-Date… (DSN) or Feedback-Type, User-Agent… (ARF). */
  perMessage: Record<string, string>;
  /** The blocks after it: Final-Recipient, Action, Status, Diagnostic-Code… (DSN only). */
  recipients: Record<string, string>[];
}

/** Part types read as report fields. */
export const REPORT_TYPES = new Set(['message/delivery-status', 'message/global-delivery-status', 'message/feedback-report']);

/** Largest report read; a real one is a few KiB (the original message is a part of its own). */
const MAX_REPORT = 256 * 1024;

export function parseReportFields(body: Buffer | string): ReportFields {
  const text = (typeof body === 'string' ? body : body.subarray(0, MAX_REPORT).toString('latin1')).replace(/\r\n?/g, '\n');
  // Blank lines (white space only counts as blank: RFC 3464 senders pad them) split the blocks.
  const blocks = text
    .split(/\n[ \t]*\n/)
    .map((b) => b.replace(/^\n+/, ''))
    .filter((b) => b.trim());
  const fields = (block: string) => {
    const out: Record<string, string> = {};
    for (const [name, value] of parseHeaderBlock(block)) if (!(name in out)) out[name] = value;
    return out;
  };
  const [first, ...rest] = blocks.map(fields);
  return { perMessage: first ?? {}, recipients: rest.filter((r) => Object.keys(r).length) };
}
