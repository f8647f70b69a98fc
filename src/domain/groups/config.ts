import { z } from 'zod';
import { smtpRelayFields } from '../../net/smtp-relay.js';

/**
 * `groups:` in the config: where relayed posts leave (an MTA that delivers to the members, e.g.
 * the local Postfix; DSNs of forward routes leave through it too, outbound/send-dsn.ts) and when
 * a bouncing member is suspended.
 */
export const groupsSchema = z.strictObject({
  relay: z
    .strictObject({
      ...smtpRelayFields,
      host: z.string().min(1).describe('SMTP host that delivers copies to the members and DSNs to senders (e.g. the local MTA)'),
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
