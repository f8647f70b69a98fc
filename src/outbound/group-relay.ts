import { Readable } from 'node:stream';
import type { Transporter } from 'nodemailer';
import type { GroupsConfig } from '../domain/groups/config.js';
import { smtpTransportOptions } from '../net/smtp-relay.js';
import { smtpFailure } from '../net/remote-answer.js';
import type { MailError } from '../core/errors.js';

/** Sends one copy of a post: one SMTP transaction per member, so each has its own return path. */
export interface GroupRelay {
  /** Resolves with the relay's reply; throws MailError (4xx transient, 5xx permanent). */
  send(envelope: { from: string; to: string }, raw: AsyncIterable<Buffer>, signal: AbortSignal): Promise<string>;
  close(): void;
}

/**
 * The outbound SMTP relay of `groups.relay`, through a pooled nodemailer transport, made (and
 * nodemailer loaded) at the first send: a serve whose groups never post does not carry it.
 */
export function smtpGroupRelay(cfg: NonNullable<GroupsConfig['relay']>): GroupRelay {
  let transport: Promise<Transporter> | undefined;
  const open = async (): Promise<Transporter> => {
    const { default: nodemailer } = await import('nodemailer');
    return nodemailer.createTransport({ ...smtpTransportOptions(cfg), pool: true, maxConnections: 2 });
  };
  return {
    async send(envelope, raw, signal) {
      // `raw`: nodemailer sends the bytes as given (dot-stuffed on the wire, RFC 5321 §4.5.2).
      const stream = Readable.from(raw);
      try {
        transport ??= open();
        const info = (await (await transport).sendMail({ envelope, raw: stream, signal } as never)) as { response?: string; rejectedErrors?: unknown[] };
        if (info.rejectedErrors?.length) throw smtpFailure(info.rejectedErrors[0] as never, cfg.host);
        return String(info.response ?? 'accepted');
      } catch (err) {
        stream.destroy();
        throw (err as MailError).status ? err : smtpFailure(err as never, cfg.host);
      }
    },
    close: () => void transport?.then((t) => t.close()),
  };
}
