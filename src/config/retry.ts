import { z } from 'zod';
import { duration } from './units.js';

/**
 * When to try a delivery again. Either an explicit schedule (delays between attempts) or
 * exponential backoff; both with jitter, both bounded by attempts and age. The default spans
 * about 3 days (docs/decisions.md, "Retry for about three days"): the MTA that handed us the
 * message would itself have kept it for 4–5 days (RFC 5321 §4.5.4.1), so an endpoint down over
 * a weekend must not turn mail we accepted into dead deliveries. A route that wants Postmark's
 * ~10.5 h (or anything else) says so in its own `retry:`.
 */
export const retrySchema = z
  .strictObject({
    maxAttempts: z.number().int().min(1).max(1000).default(14).describe('attempts before the delivery is dead'),
    maxAge: duration().default(72 * 3_600_000).describe('time since the first attempt after which it is dead'),
    schedule: z
      .array(duration())
      .min(1)
      .optional()
      .describe('delays before attempts 2, 3, …; the last repeats. Overrides initialDelay/factor'),
    initialDelay: duration().default(60_000).describe('exponential backoff: delay before attempt 2'),
    factor: z.number().min(1).max(10).default(2).describe('exponential backoff: each delay is this many times the one before'),
    maxDelay: duration().default(6 * 3_600_000).describe('exponential backoff: the longest delay between two attempts'),
    jitter: z.number().min(0).max(1).default(0.2).describe('± fraction of each delay, so retries do not stampede'),
  })
  .describe('retry policy for one route');

export type RetryPolicy = z.output<typeof retrySchema>;

/**
 * The default policy: 14 attempts, the last about 58 h after the first (70 h at the widest jitter), dead at 72 h. It starts
 * like Postmark's (1m, 5m, 10m, …: a blip is over in minutes) and then spaces out to 12 h.
 */
export const DEFAULT_RETRY: RetryPolicy = retrySchema.parse({
  schedule: ['1m', '5m', '10m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '12h', '12h'],
});
