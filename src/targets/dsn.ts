import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';

/**
 * Delivery status notifications (RFC 3464) for mail we could not pass on: a multipart/report
 * (RFC 6522) with a human part, the machine-readable message/delivery-status, and the original
 * header block as text/rfc822-headers (not the whole message: a bounce should not carry a
 * 50 MB attachment back, and the headers identify the message).
 */

export interface DsnRecipient {
  address: string;
  /** RFC 3463 enhanced status, e.g. '5.1.1'. */
  status: string;
  /** The remote server's reply, e.g. '550 5.1.1 <x@y>: Recipient address rejected'. */
  diagnostic: string;
}

export interface DsnInput {
  /** Our host name, for Reporting-MTA and the From/Message-ID domains. */
  reportingMta: string;
  /** The server that refused, for Remote-MTA. */
  remoteMta?: string;
  /** Envelope sender of the original message: the DSN's only recipient. Never ''. */
  to: string;
  /** When we received the original (Arrival-Date). */
  arrivalDate: Date;
  recipients: DsnRecipient[];
  /** The original header block as received (CRLF line endings, no blank line at the end). */
  originalHeaders: Buffer;
  originalSubject?: string | null;
  now?: Date;
}

/** Strip CR/LF so a value from elsewhere cannot start a new header line. */
function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').trim();
}

/** RFC 5322 date-time in UTC. */
function rfc5322Date(d: Date): string {
  return d.toUTCString().replace('GMT', '+0000');
}

/** The DSN message, CRLF line endings throughout. */
export function buildDsn(input: DsnInput): Buffer {
  // An assertion, not a mail outcome: every caller filters the null sender out first, and were
  // one not to, the delivery would be retried as INTERNAL rather than bounce to <>.
  if (!input.to) throw new Error('never send a DSN to the null sender <> (RFC 3464 §2, RFC 5321 §4.5.5)');
  const now = input.now ?? new Date();
  const mta = oneLine(input.reportingMta);
  const boundary = `=_dsn_${randomBytes(12).toString('hex')}`;
  const human = [
    'This is the mail system at host ' + mta + '.',
    '',
    'Your message could not be delivered to one or more recipients.',
    'It has been given up on permanently; it will not be retried.',
    '',
    ...input.recipients.map((r) => `<${oneLine(r.address)}>: ${oneLine(r.diagnostic)}`),
    '',
    ...(input.originalSubject ? [`Subject of the message: ${oneLine(input.originalSubject)}`] : []),
  ];
  const perMessage = [`Reporting-MTA: dns; ${mta}`, `Arrival-Date: ${rfc5322Date(input.arrivalDate)}`];
  const perRecipient = input.recipients.flatMap((r) => [
    '',
    `Final-Recipient: rfc822; ${oneLine(r.address)}`,
    'Action: failed',
    `Status: ${oneLine(r.status)}`,
    ...(input.remoteMta ? [`Remote-MTA: dns; ${oneLine(input.remoteMta)}`] : []),
    `Diagnostic-Code: smtp; ${oneLine(r.diagnostic)}`,
  ]);
  const lines = [
    `From: Mail Delivery System <MAILER-DAEMON@${mta}>`,
    `To: <${oneLine(input.to)}>`,
    'Subject: Undelivered Mail Returned to Sender',
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: <dsn.${now.getTime()}.${randomBytes(6).toString('hex')}@${mta}>`,
    // RFC 3834 §5: marks it automatic, so auto-responders do not answer it.
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated delivery status notification.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    ...human,
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    '',
    ...perMessage,
    ...perRecipient,
    '',
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    '',
    '',
  ];
  // The original header bytes go in as they are (they may be 8-bit in any charset).
  return Buffer.concat([
    Buffer.from(lines.join('\r\n'), 'utf8'),
    input.originalHeaders,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
}

/** The header block of a raw message (up to the first empty line), at most `limit` bytes. */
export async function readHeaderBlock(raw: Readable, limit = 64 * 1024): Promise<Buffer> {
  let buf = Buffer.alloc(0);
  for await (const c of raw as AsyncIterable<Buffer>) {
    buf = Buffer.concat([buf, c]);
    const end = buf.indexOf('\r\n\r\n');
    if (end >= 0) {
      buf = buf.subarray(0, end);
      break;
    }
    if (buf.length >= limit) {
      buf = buf.subarray(0, limit);
      // Cut at a line end so the part holds whole header lines only.
      const last = buf.lastIndexOf('\r\n');
      if (last > 0) buf = buf.subarray(0, last);
      break;
    }
  }
  raw.destroy();
  return buf;
}
