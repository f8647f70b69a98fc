import { z } from 'zod';
import type { Receipt, Target } from '../core/delivery.js';
import { mailError } from '../core/errors.js';
import type { GroupsConfig } from '../domain/groups/config.js';
import { smtpGroupRelay, type GroupRelay } from './group-relay.js';

/**
 * The `dsn` target: sends a DSN kept by delivery/keep-outbound.ts (ingress `dsn`, status
 * `sending`) through `groups.relay`, the one outbound SMTP relay the config describes. It rides
 * the delivery queue like any delivery: a 4xx or an unreachable relay is retried with backoff,
 * a 5xx ends it; the message's status follows (`sent` | `error`, store/deliveries.ts
 * refreshMessageStatus). Registered by app.ts only: no route can name it.
 */

export const dsnParams = z.strictObject({}).describe('send a DSN Postroom generated (queued by the forward target, not by routes)');
export type DsnParams = z.output<typeof dsnParams>;

/** The `dsn` target over `groups.relay` (unset: every attempt is a 4.3.5 deferral until it is set). */
export function createDsnTarget(deps: { relay: GroupsConfig['relay'] }): Target<DsnParams> {
  return {
    kind: 'dsn',
    params: dsnParams,
    async deliver(msg, _p, ctx): Promise<Receipt> {
      // As for group posts: the DSN waits (transient, retried per backoff, dead after the
      // policy's age) rather than failing at once, so setting the relay and restarting in time
      // sends it without a hand replay.
      if (!deps.relay) throw mailError('CONFIG', 'groups.relay is not configured: the DSN is kept but cannot be sent');
      // RFC 5321 §4.5.5: a DSN goes out from the null sender, so it can never bounce again.
      // One recipient: the original's envelope sender (keep-outbound never queues another shape).
      const [to] = ctx.recipients;
      if (!to || ctx.recipients.length !== 1) throw mailError('MISCONFIGURED', `a DSN has exactly one recipient; this one has ${ctx.recipients.length}`);
      const relay: GroupRelay = smtpGroupRelay(deps.relay);
      try {
        const reply = await relay.send({ from: '', to }, await msg.openRaw(), ctx.signal);
        return { summary: reply.slice(0, 200), reply, relay: deps.relay.host };
      } finally {
        relay.close();
      }
    },
  };
}
