import os from 'node:os';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { z } from 'zod';
import { duration } from '../config/units.js';

/** How to reach an SMTP relay: the fields forward routes and `groups.relay` share. */
export const smtpRelayFields = {
  host: z.string().min(1).describe('SMTP relay host'),
  port: z.number().int().min(1).max(65535).default(25).describe('SMTP port: 25 to an MTA, 587 (submission, STARTTLS) or 465 (with secure) to a provider'),
  secure: z.boolean().default(false).describe('TLS from the first byte (port 465); otherwise STARTTLS per `starttls`'),
  starttls: z
    .enum(['opportunistic', 'required', 'never'])
    .default('opportunistic')
    .describe('opportunistic: STARTTLS when offered; required: fail (and retry) without it; never: plain text'),
  tlsVerify: z.boolean().default(true).describe('check the relay certificate; false only for a relay with a self-signed certificate on a network you trust'),
  auth: z
    .strictObject({ user: z.string().min(1).describe('SMTP AUTH user name'), pass: z.string().describe('SMTP AUTH password') })
    .optional()
    .describe('SMTP AUTH credentials; unset: no AUTH'),
  helo: z.string().min(1).optional().describe('name in EHLO/HELO; default: the OS host name'),
  timeout: duration().default(60_000).describe('connect, greeting and idle socket timeout'),
};

/** A relay as the config gives it (defaults applied). */
export type SmtpRelay = z.output<z.ZodObject<typeof smtpRelayFields>>;

/** nodemailer's SMTP transport options for a relay. */
export function smtpTransportOptions(r: SmtpRelay): SMTPTransport.Options {
  return {
    host: r.host,
    port: r.port,
    secure: r.secure,
    requireTLS: r.starttls === 'required',
    ignoreTLS: r.starttls === 'never',
    opportunisticTLS: r.starttls === 'opportunistic',
    tls: { rejectUnauthorized: r.tlsVerify, servername: r.host },
    auth: r.auth ? { user: r.auth.user, pass: r.auth.pass } : undefined,
    name: r.helo ?? os.hostname(),
    connectionTimeout: r.timeout,
    greetingTimeout: r.timeout,
    socketTimeout: r.timeout,
  };
}
