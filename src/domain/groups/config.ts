import { z } from 'zod';
import { duration } from '../../config/units.js';

/**
 * `groups:` in the config: where relayed posts leave (an MTA that delivers to the members, e.g.
 * the local Postfix; DSNs of forward routes leave through it too, outbound/send-dsn.ts) and when
 * a bouncing member is suspended.
 */
export const groupsSchema = z.strictObject({
  relay: z
    .strictObject({
      host: z.string().min(1).describe('SMTP host that delivers copies to the members and DSNs to senders (e.g. the local MTA)'),
      port: z.number().int().min(1).max(65535).default(25),
      secure: z.boolean().default(false).describe('TLS from the first byte (port 465)'),
      starttls: z.enum(['opportunistic', 'required', 'never']).default('opportunistic'),
      tlsVerify: z.boolean().default(true).describe('check the relay certificate'),
      auth: z.strictObject({ user: z.string().min(1), pass: z.string() }).optional().describe('SMTP AUTH credentials'),
      helo: z.string().min(1).optional().describe('name in EHLO; default: the OS host name'),
      timeout: duration().default(60_000).describe('connect, greeting and idle socket timeout'),
    })
    .optional()
    .describe('outbound SMTP for posts relayed to members and for DSNs (bounces of forward routes); unset: both are kept, not sent (deliveries wait with 4.3.5)'),
  bounceLimit: z
    .number()
    .int()
    .positive()
    .default(3)
    .describe('bounces after which a member is suspended (nothing relayed to them until the count is reset)'),
});

export type GroupsConfig = z.output<typeof groupsSchema>;
