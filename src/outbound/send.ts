import os from 'node:os';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { Receipt, Target } from '../core/delivery.js';
import { mailError } from '../core/errors.js';
import { effectiveOptions } from '../domain/accounts/config.js';
import type { SecretBox } from '../domain/accounts/secret-box.js';
import { accountPassword, getAccount, getProfile } from '../domain/accounts/store.js';
import { appendToSent } from './append-sent.js';
import type { Db } from '../store/db.js';
import { smtpFailure } from '../net/remote-answer.js';

/**
 * The outbound target: sends a message created through the API (status `sending`) through
 * its account's SMTP server. It rides the delivery queue, so a 4xx or a dead server is retried
 * with backoff, and a 5xx ends it; the message's status follows its delivery (`sent` with the
 * server's reply and our Message-ID in the receipt, or `error` with the reason). See
 * store/deliveries.ts refreshMessageStatus.
 */

export const outboundParams = z.strictObject({ account: z.string().min(1) }).describe('send through a mail account (created by the API, not by routes)');
export type OutboundParams = z.output<typeof outboundParams>;

/** The outbound target bound to the store (accounts) and the secret box (their passwords). */
export function createOutboundTarget(deps: { db: Db; box: SecretBox }): Target<OutboundParams> {
  return {
    kind: 'outbound',
    params: outboundParams,
    async deliver(msg, p, ctx): Promise<Receipt> {
      const account = await getAccount(deps.db, p.account);
      if (!account) throw mailError('MISCONFIGURED', `mail account ${p.account} no longer exists`);
      const profile = await getProfile(deps.db, account.profile);
      const smtp = profile?.smtp;
      if (!profile || !smtp) throw mailError('MISCONFIGURED', `profile of account ${account.name} has no SMTP server`);
      const opts = effectiveOptions(profile.options, account.options);
      const password = await accountPassword(deps.db, deps.box, account.id);
      // Loaded on first use: a serve whose accounts never send does not carry nodemailer.
      const { default: nodemailer } = await import('nodemailer');
      const transport = nodemailer.createTransport({
        host: smtp.host,
        port: smtp.port,
        secure: smtp.tls === 'tls',
        requireTLS: smtp.tls === 'starttls',
        ignoreTLS: smtp.tls === 'none',
        tls: { rejectUnauthorized: opts.tls_verify ?? true, servername: smtp.host },
        // Logged in only where the server offers AUTH (nodemailer checks the EHLO answer).
        auth: { user: account.username, pass: password },
        name: os.hostname(),
        connectionTimeout: 60_000,
        greetingTimeout: 60_000,
        socketTimeout: 60_000,
      });
      const raw = await msg.openRaw();
      const envelope = { from: msg.message.mailFrom, to: ctx.recipients };
      let info: { response?: string; accepted?: unknown[]; rejected?: unknown[]; rejectedErrors?: Parameters<typeof smtpFailure>[0][] };
      try {
        info = await transport.sendMail({ envelope, raw: raw as Readable, signal: ctx.signal });
      } catch (thrown) {
        raw.destroy();
        const err = smtpFailure(thrown as Parameters<typeof smtpFailure>[0], smtp.host);
        // Every recipient refused: one deferral among them makes the whole send a retry.
        const deferred = ((thrown as { rejectedErrors?: Parameters<typeof smtpFailure>[0][] }).rejectedErrors ?? [])
          .map((e) => smtpFailure(e, smtp.host))
          .find((f) => f.transient);
        throw deferred ?? err;
      } finally {
        transport.close();
      }
      const refused = (info.rejectedErrors ?? []).map((e) => smtpFailure(e, smtp.host));
      // Some recipients deferred: retry (the accepted ones may get it twice; at-least-once allows that).
      const deferred = refused.find((f) => f.transient);
      if (deferred) throw deferred;
      const sent = opts.sent_folder && profile.protocol === 'imap'
        ? await appendToSent(profile, { username: account.username, password, tlsVerify: opts.tls_verify ?? true }, opts.sent_folder, () => msg.openRaw())
        : undefined;
      return {
        summary: String(info.response ?? 'accepted').slice(0, 200),
        ...(sent ? { sentFolder: sent } : {}),
        reply: info.response ?? null,
        messageId: msg.message.messageId,
        accepted: info.accepted,
        ...(refused.length ? { rejected: info.rejected } : {}),
      };
    },
  };
}
