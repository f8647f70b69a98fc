import type { RetryPolicy } from '../config/retry.js';

/** Delay in ms before attempt number `nextAttempt` (2 = the first retry), jitter included. */
export function retryDelay(policy: RetryPolicy, nextAttempt: number, random: () => number = Math.random): number {
  const n = Math.max(1, nextAttempt - 1); // nth retry
  let base: number;
  if (policy.schedule?.length) base = policy.schedule[Math.min(n, policy.schedule.length) - 1];
  else base = Math.min(policy.maxDelay, policy.initialDelay * policy.factor ** (n - 1));
  const spread = base * policy.jitter;
  return Math.max(0, Math.round(base - spread + random() * 2 * spread));
}

/**
 * When attempt `nextAttempt` may run, or null when the policy says give up: attempts used
 * up, or the retry would fall past maxAge. `retryAfterMs` (an upstream's Retry-After) is a floor.
 */
export function nextAttemptAt(
  policy: RetryPolicy,
  nextAttempt: number,
  firstAttemptAt: Date,
  now: Date = new Date(),
  retryAfterMs = 0,
  random: () => number = Math.random,
): Date | null {
  if (nextAttempt > policy.maxAttempts) return null;
  const at = new Date(now.getTime() + Math.max(retryDelay(policy, nextAttempt, random), retryAfterMs));
  if (at.getTime() - firstAttemptAt.getTime() > policy.maxAge) return null;
  return at;
}
