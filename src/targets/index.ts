import type { Target } from '../core/delivery.js';
import { discardTarget } from './discard.js';
import { forwardTarget } from './forward.js';
import { rejectTarget } from './reject.js';
import { spoolTarget } from './spool.js';
import { webhookTarget } from './webhook.js';

/** Every kind of target, by kind (`deliver: [{ webhook: {...} }]` in a route names one). Add a target: one file, one line. */
export const targets = new Map<string, Target<any>>([
  [rejectTarget.kind, rejectTarget],
  [discardTarget.kind, discardTarget],
  [spoolTarget.kind, spoolTarget],
  [webhookTarget.kind, webhookTarget],
  [forwardTarget.kind, forwardTarget],
]);
