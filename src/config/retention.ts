import { z } from 'zod';
import { duration, size } from './units.js';

/**
 * How long kept messages stay, per route and by default (store/retention.ts applies it). Each
 * limit is off when unset; 0 turns one off explicitly (a route keeping its messages for ever
 * while the default removes others'). Nothing is removed by default: a store upgraded from a
 * version without retention keeps everything until the operator says otherwise.
 */
export const retentionLimitsShape = {
  maxAge: duration()
    .optional()
    .describe("remove messages received longer ago than this (e.g. 30d, Action Mailbox's incineration age); 0: no age limit"),
  maxMessages: z
    .number()
    .int()
    .nonnegative()
    .optional()
    .describe('keep at most this many messages, the newest; older ones are removed (those that cannot be are still counted); 0: no limit'),
  maxBytes: size()
    .optional()
    .describe('keep at most this many bytes of messages (their raw size), the newest; older ones are removed; 0: no limit'),
};

export const routeRetentionSchema = z
  .strictObject(retentionLimitsShape)
  .describe(
    "this route's own retention: its messages are counted and aged by these limits instead of the top-level retention: ones (an unset key takes the top-level value). A message several routes took is removed only when every one of them lets it go (docs/retention.md)",
  );

export const retentionSchema = z
  .strictObject({
    ...retentionLimitsShape,
    interval: duration()
      .default(3_600_000)
      .describe('how often `serve` removes what the limits let go (also once at start; 0: only `postroom purge`)'),
    batchSize: z
      .number()
      .int()
      .min(1)
      .max(5000)
      .default(500)
      .describe('messages removed per transaction: a batch holds the write lock (SQLite) or its rows (PostgreSQL) only briefly'),
  })
  .describe(
    'removing old messages: the default limits for messages of routes without their own retention: and for messages no route took. Only messages whose deliveries are all finished (done, failed, dead, or none) and that are not pinned or held for moderation are removed; documents, work packages and group posts keep their own copies (docs/retention.md)',
  );

export type RetentionConfig = z.output<typeof retentionSchema>;
