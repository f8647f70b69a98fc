import { z } from 'zod';
import type { Target } from '../core/delivery.js';
import { relayedError, type MailError } from '../core/errors.js';

/**
 * Refuse mail with a reply of the operator's choice. At RCPT time (`check`) the sender hears
 * it while it still holds the message; when the route waits for DATA conditions, the delivery
 * fails with it instead (a permanent failure unless the code is 4xx).
 */
export const rejectParams = z
  .strictObject({
    code: z.number().int().min(400).max(599).default(550).describe('SMTP reply code, 4xx (try later) or 5xx'),
    status: z
      .string()
      .regex(/^[45]\.\d{1,3}\.\d{1,3}$/, 'an RFC 3463 enhanced status like 5.7.1')
      .default('5.7.1')
      .describe('RFC 3463 enhanced status code; its class must agree with code'),
    // CR/LF in the text would end the reply line and let the config smuggle a second reply.
    text: z
      .string()
      .min(1)
      .max(400)
      .regex(/^[^\r\n]*$/, 'one line')
      .default('Message rejected')
      .describe('human text of the reply'),
  })
  .refine((p) => String(p.code)[0] === p.status[0], { message: 'code and status must both be 4xx or both 5xx', path: ['status'] })
  .describe('refuse with this reply: at RCPT time when the route needs no DATA condition, else the delivery fails with it');

export type RejectParams = z.output<typeof rejectParams>;

/** The configured refusal as a MailError: the operator's code, status and words (4xx is transient). */
export function rejectError(p: RejectParams): MailError {
  return relayedError('REJECTED', p.status, p.text, { smtpCode: p.code });
}

/** The `reject` target. */
export const rejectTarget: Target<RejectParams> = {
  kind: 'reject',
  params: rejectParams,
  takesManyRecipients: true,
  async check(_rcpt, p) {
    throw rejectError(p);
  },
  async deliver(_msg, p) {
    throw rejectError(p);
  },
};
