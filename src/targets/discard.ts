import { z } from 'zod';
import type { Target } from '../core/delivery.js';

/** Accept and drop: the message stays in the store, nothing is delivered anywhere. */
export const discardParams = z
  .strictObject({
    reason: z.string().max(200).optional().describe('kept on the delivery receipt, for the operator'),
  })
  .describe('accept the message and deliver it nowhere (it stays kept and readable through the API)');

export type DiscardParams = z.output<typeof discardParams>;

/** The `discard` target. */
export const discardTarget: Target<DiscardParams> = {
  kind: 'discard',
  params: discardParams,
  takesManyRecipients: true,
  async deliver(_msg, p) {
    return { summary: p.reason ? `discarded: ${p.reason}` : 'discarded' };
  },
};
