import os from 'node:os';
import { Readable } from 'node:stream';
import { z } from 'zod';
import type { DeliveryContext, ParsedMessage, Receipt, Target } from '../core/delivery.js';
import { mailError, MailError } from '../core/errors.js';
import { smtpRelayFields, smtpTransportOptions } from '../outbound/smtp-relay.js';
import { buildDsn, readHeaderBlock, type DsnRecipient } from './dsn.js';

export const forwardParams = z
  .strictObject({
    ...smtpRelayFields,
    helo: z.string().min(1).optional().describe('name in EHLO/HELO and in DSNs; default: the OS host name'),
    mailFrom: z.string().optional().describe("rewrite the envelope sender ('' for <>); default: the original sender"),
    rcptTo: z.array(z.string().min(3)).min(1).optional().describe('rewrite the envelope recipients; default: the routed recipients'),
    trace: z.boolean().default(true).describe('prepend our Received: header, as a relaying MTA does'),
    dsn: z
      .boolean()
      .default(true)
      .describe('on a permanent refusal send a DSN (RFC 3464) to the envelope sender through groups.relay; never to <>'),
  })
  .describe('relay the message unchanged to an SMTP server');

export type ForwardParams = z.output<typeof forwardParams>;

interface SmtpError extends Error {
  code?: string;
  response?: string;
  responseCode?: number;
  permanent?: boolean;
  rejected?: string[];
  rejectedErrors?: SmtpError[];
  recipient?: string;
}

/** The enhanced status in an SMTP reply ('550 5.1.1 …'), or the class default (RFC 3463 §3). */
function enhancedOf(reply: string | undefined, code: number): string {
  const m = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply ?? '');
  return m ? m[1] : `${String(code)[0]}.0.0`;
}

/**
 * An SMTP failure as MailError. A reply code decides: 4xx transient, 5xx permanent (nodemailer's
 * `permanent` flag is used where it has one: it counts 503 after a failed pipelined command as
 * transient). No reply at all (refused, reset, TLS, DNS) is transient: unknown ⇒ retry.
 */
export function smtpFailure(err: SmtpError, host: string): MailError {
  const code = err.responseCode ?? err.rejectedErrors?.find((e) => e.responseCode)?.responseCode;
  const reply = (err.response ?? err.rejectedErrors?.find((e) => e.response)?.response ?? '').replace(/\s+/g, ' ').trim();
  if (code) {
    const permanent = err.permanent ?? code >= 500;
    const status = enhancedOf(reply, permanent ? 5 : 4);
    const fixed = status[0] === (permanent ? '5' : '4') ? status : `${permanent ? 5 : 4}${status.slice(1)}`;
    return mailError(permanent ? 'TARGET_REJECTED' : 'TARGET_TEMPFAIL', `${host} said: ${reply || code}`, {
      status: fixed,
      smtpCode: permanent ? 550 : 451,
      cause: err,
    });
  }
  return mailError('TARGET_CONNECT', `${host}: ${err.code ?? 'error'}: ${err.message}`, { cause: err });
}

/** The remote reply inside a failure's text, for Diagnostic-Code. */
function diagnostic(e: MailError): string {
  return e.message.replace(/^.*? said: /, '');
}

/** Keep and queue a DSN to the envelope sender for the refused recipients; returns its message id, or undefined. */
async function bounce(msg: ParsedMessage, p: ForwardParams, ctx: DeliveryContext, rcpts: DsnRecipient[]): Promise<string | undefined> {
  // RFC 5321 §4.5.5 / RFC 3464 §2: never a DSN to the null sender (bounce loops).
  if (!p.dsn || !msg.message.mailFrom || !ctx.keepOutbound || !rcpts.length) return undefined;
  const raw = buildDsn({
    reportingMta: p.helo ?? os.hostname(),
    remoteMta: p.host,
    to: msg.message.mailFrom,
    arrivalDate: new Date(msg.message.receivedAt),
    recipients: rcpts,
    originalHeaders: await readHeaderBlock(await msg.openRaw()),
    originalSubject: msg.message.subject,
  });
  return ctx.keepOutbound({ mailFrom: '', rcptTo: [msg.message.mailFrom] }, raw);
}

export const forwardTarget: Target<ForwardParams> = {
  kind: 'forward',
  params: forwardParams,
  destination: (p) => `smtp://${p.host}:${p.port}`,
  async deliver(msg, p, ctx): Promise<Receipt> {
    // nodemailer is loaded on first use: a serve that never forwards does not carry it.
    const { default: nodemailer } = await import('nodemailer');
    const transport = nodemailer.createTransport(smtpTransportOptions(p));
    const envelope = { from: p.mailFrom ?? msg.message.mailFrom, to: p.rcptTo ?? ctx.recipients };
    // `raw`: nodemailer streams the bytes as they are (no header added or rewritten); its SMTP
    // data stream dot-stuffs lines that start with '.' and ends with CRLF.CRLF (RFC 5321 §4.5.2).
    const raw = p.trace ? await msg.openRawWithTrace() : await msg.openRaw();
    let info: { response?: string; accepted?: unknown[]; rejected?: unknown[]; rejectedErrors?: SmtpError[] };
    try {
      info = await transport.sendMail({ envelope, raw: raw as Readable, signal: ctx.signal });
    } catch (thrown) {
      raw.destroy();
      const err = smtpFailure(thrown as SmtpError, p.host);
      // Every recipient refused at RCPT: per-recipient replies; one deferral makes it a retry.
      const perRcpt = ((thrown as SmtpError).rejectedErrors ?? []).map((e) => ({ e, f: smtpFailure(e, p.host) }));
      if (err.transient) throw err;
      const deferred = perRcpt.find((r) => r.f.transient);
      if (deferred) throw deferred.f;
      const rcpts: DsnRecipient[] = perRcpt.length
        ? perRcpt.map(({ e, f }) => ({ address: e.recipient ?? '?', status: f.status, diagnostic: diagnostic(f) }))
        : envelope.to.map((address) => ({ address, status: err.status, diagnostic: diagnostic(err) }));
      const dsnId = await bounce(msg, p, ctx, rcpts);
      throw dsnId ? new MailError(err.code, { status: err.status, smtpCode: err.smtpCode, message: `${err.message} (DSN ${dsnId} queued for <${msg.message.mailFrom}>)`, cause: err }) : err;
    } finally {
      transport.close();
    }
    const refused = (info.rejectedErrors ?? []).map((e) => ({ e, f: smtpFailure(e, p.host) }));
    // Some recipients deferred (4xx) while others were accepted: retry the delivery. The
    // accepted ones may then get it twice, which at-least-once delivery allows; losing the
    // deferred ones would not be.
    const deferred = refused.find((r) => r.f.transient);
    if (deferred) throw deferred.f;
    let dsnId: string | undefined;
    if (refused.length) {
      dsnId = await bounce(
        msg,
        p,
        ctx,
        refused.map(({ e, f }) => ({ address: e.recipient ?? '?', status: f.status, diagnostic: diagnostic(f) })),
      );
    }
    return {
      summary: String(info.response ?? 'accepted').slice(0, 200),
      accepted: info.accepted,
      ...(refused.length ? { rejected: refused.map((r) => r.e.recipient), dsn: dsnId } : {}),
    };
  },
};
