import os from 'node:os';
import { Readable } from 'node:stream';
import { z } from 'zod';
import type { DeliveryContext, ParsedMessage, Receipt, RecipientOutcome, Target } from '../core/delivery.js';
import { mailError, relayedError, type MailError } from '../core/errors.js';
import { enhancedOf, smtpFailure, type SmtpError } from '../net/remote-answer.js';
import { smtpRelayFields, smtpTransportOptions } from '../net/smtp-relay.js';
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
  .describe('relay the message unchanged (the bytes as received) to an SMTP server; 4xx: retried; 5xx: failed, with a DSN to the sender (docs/delivery.md)');

export type ForwardParams = z.output<typeof forwardParams>;

/** The remote reply inside a failure's text, for Diagnostic-Code. */
function diagnostic(e: MailError): string {
  return e.message.replace(/^.*? said: /, '');
}

/** Keep and queue a DSN to the envelope sender for the refused recipients; returns its message id, or undefined. */
async function bounce(msg: ParsedMessage, p: ForwardParams, ctx: DeliveryContext, rcpts: DsnRecipient[]): Promise<string | undefined> {
  // RFC 5321 §4.5.5 / RFC 3464 §2: never a DSN to the null sender (bounce loops). Nor for a
  // recipient refused as a mail loop (5.4.6): the loop ends there, a DSN would only feed it.
  rcpts = rcpts.filter((r) => r.status !== '5.4.6');
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

/** A recipient's outcome from an SMTP failure that names it (or the whole transaction's). */
function outcomeOf(recipient: string, f: MailError): RecipientOutcome {
  return { recipient, status: f.transient ? 'deferred' : 'failed', reply: diagnostic(f), enhancedStatus: f.status };
}

/** DSN lines for outcomes: each with its status and the reply that decided it. */
const dsnRecipients = (outcomes: RecipientOutcome[]): DsnRecipient[] =>
  outcomes.map((o) => ({ address: o.recipient, status: o.enhancedStatus ?? '5.0.0', diagnostic: o.reply ?? 'undelivered' }));

/** `err` with the DSN it queued named in its text. */
function withDsn(err: MailError, dsnId: string | undefined, sender: string): MailError {
  return dsnId ? relayedError(err.code, err.status, `${err.message} (DSN ${dsnId} queued for <${sender}>)`, { smtpCode: err.smtpCode, cause: err }) : err;
}

/**
 * The `forward` target: one SMTP transaction to the relay, one RCPT TO per recipient. Each
 * recipient's outcome is kept across attempts (ctx.recipientOutcomes): accepted ones are never
 * sent again, deferred ones (4xx, or no answer at all) are retried, refused ones (5xx) are
 * bounced together in one DSN when nothing is left to retry. A delivery that dies still
 * deferred bounces the recipients not delivered, with their last reply (`dead`, RFC 3464
 * `Action: failed`, as Postfix does when a message expires in its queue).
 */
export const forwardTarget: Target<ForwardParams> = {
  kind: 'forward',
  params: forwardParams,
  // One SMTP transaction, one RCPT TO per recipient: the upstream fans out.
  takesManyRecipients: true,
  // The relay: forwards to one server share its limit and its circuit breaker.
  endpoint: (p) => `smtp://${p.host}:${p.port}`,
  async deliver(msg, p, ctx): Promise<Receipt> {
    const all = p.rcptTo ?? ctx.recipients;
    const before = (await ctx.recipientOutcomes?.read()) ?? new Map<string, RecipientOutcome>();
    const settled = (r: string) => ['done', 'failed'].includes(before.get(r.toLowerCase())?.status ?? '');
    const todo = all.filter((r) => !settled(r));
    const outcomes: RecipientOutcome[] = [];
    let accepted: unknown[] = [];
    let response = '';
    /** The whole transaction failed for everyone this attempt tried (no per-recipient replies). */
    let whole: MailError | undefined;
    if (todo.length) {
      // nodemailer is loaded on first use: a serve that never forwards does not carry it.
      const { default: nodemailer } = await import('nodemailer');
      const transport = nodemailer.createTransport(smtpTransportOptions(p));
      const envelope = { from: p.mailFrom ?? msg.message.mailFrom, to: todo };
      // `raw`: nodemailer streams the bytes as they are (no header added or rewritten); its SMTP
      // data stream dot-stuffs lines that start with '.' and ends with CRLF.CRLF (RFC 5321 §4.5.2).
      const raw = p.trace ? await msg.openRawWithTrace() : await msg.openRaw();
      try {
        const info: { response?: string; accepted?: unknown[]; rejectedErrors?: SmtpError[] } = await transport.sendMail({
          envelope,
          raw: raw as Readable,
          signal: ctx.signal,
        });
        response = String(info.response ?? 'accepted');
        accepted = info.accepted ?? [];
        const refused = new Map((info.rejectedErrors ?? []).map((e) => [(e.recipient ?? '').toLowerCase(), smtpFailure(e, p.host)]));
        for (const r of todo) {
          const f = refused.get(r.toLowerCase());
          outcomes.push(f ? outcomeOf(r, f) : { recipient: r, status: 'done', reply: response.slice(0, 500), enhancedStatus: enhancedOf(response, 2) });
        }
      } catch (thrown) {
        raw.destroy();
        const err = smtpFailure(thrown as SmtpError, p.host);
        // Every recipient refused at RCPT: each has a reply of its own; otherwise the whole
        // transaction's reply (a 4xx/5xx to MAIL or DATA, or no answer) is every recipient's.
        const perRcpt = new Map(((thrown as SmtpError).rejectedErrors ?? []).map((e) => [(e.recipient ?? '').toLowerCase(), smtpFailure(e, p.host)]));
        if (!perRcpt.size) whole = err;
        for (const r of todo) outcomes.push(outcomeOf(r, perRcpt.get(r.toLowerCase()) ?? err));
      } finally {
        transport.close();
      }
      await ctx.recipientOutcomes?.record(outcomes);
    }
    const now = new Map(before);
    for (const o of outcomes) now.set(o.recipient.toLowerCase(), o);
    const state = all.map((r) => now.get(r.toLowerCase()) ?? ({ recipient: r, status: 'deferred', reply: null, enhancedStatus: null } as RecipientOutcome));
    const deferred = state.filter((o) => o.status === 'deferred');
    if (deferred.length) {
      // No answer, or a 4xx to MAIL or DATA: the relay's own words are the clearest.
      if (whole?.transient) throw whole;
      // Retry only these; the DSN for any refused ones waits, so the sender gets one.
      const first = outcomes.find((o) => o.status === 'deferred');
      throw relayedError(
        'TARGET_TEMPFAIL',
        first?.enhancedStatus?.startsWith('4') ? first.enhancedStatus : '4.0.0',
        `${p.host}: ${deferred.length} of ${all.length} recipient(s) deferred (${deferred.map((o) => `<${o.recipient}>`).join(', ')}): ${first?.reply ?? 'no answer'}`,
      );
    }
    const failed = state.filter((o) => o.status === 'failed');
    const dsnId = failed.length ? await bounce(msg, p, ctx, dsnRecipients(failed)) : undefined;
    if (failed.length === all.length) {
      const o = failed[0];
      const err = relayedError(
        'TARGET_REJECTED',
        o.enhancedStatus?.startsWith('5') ? o.enhancedStatus : '5.0.0',
        `${p.host} said: ${o.reply ?? 'refused'}${failed.length > 1 ? ` (and ${failed.length - 1} more recipient(s) refused)` : ''}`,
      );
      throw withDsn(err, dsnId, msg.message.mailFrom);
    }
    return {
      summary: (response || `accepted earlier for ${state.filter((o) => o.status === 'done').length} recipient(s)`).slice(0, 200),
      accepted: accepted.length ? accepted : state.filter((o) => o.status === 'done').map((o) => o.recipient),
      ...(failed.length ? { rejected: failed.map((o) => o.recipient), dsn: dsnId } : {}),
    };
  },
  async dead(msg, p, ctx) {
    const all = p.rcptTo ?? ctx.recipients;
    const known = (await ctx.recipientOutcomes?.read()) ?? new Map<string, RecipientOutcome>();
    // Everyone not delivered, with the last reply each had (the connection error when the
    // relay never answered).
    const undelivered = all
      .map((r) => known.get(r.toLowerCase()) ?? ({ recipient: r, status: 'deferred', reply: null, enhancedStatus: null } as RecipientOutcome))
      .filter((o) => o.status !== 'done')
      .map((o) => ({ ...o, reply: o.reply ?? 'no answer from the relay', enhancedStatus: o.enhancedStatus ?? '4.4.1' }));
    const dsnId = await bounce(msg, p, ctx, dsnRecipients(undelivered));
    return dsnId ? `DSN ${dsnId} queued for <${msg.message.mailFrom}>` : undefined;
  },
};
