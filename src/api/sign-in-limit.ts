/**
 * Failed sign-ins counted per key (client IP, user name) in a fixed one-minute window. Past the
 * limit a key is refused until its window ends, before any password is checked: guessing costs
 * the guesser a minute per `limit` tries and costs us no scrypt work. A try is counted when it
 * starts and taken back if it succeeds, so a burst of parallel tries cannot all get past the
 * check before the first of them has failed. Per process: nodes that
 * share a store each count their own (at most nodes × limit tries a minute).
 */
export class SignInLimit {
  private readonly windows = new Map<string, { failures: number; resetAt: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
  ) {}

  /** Seconds until `key` may try again, or 0 when it may now. */
  retryAfter(key: string, now = Date.now()): number {
    const w = this.windows.get(key);
    if (!w || now >= w.resetAt) return 0;
    return w.failures >= this.limit ? Math.ceil((w.resetAt - now) / 1000) : 0;
  }

  fail(key: string, now = Date.now()): void {
    // Forget ended windows as we go, so a spray of names cannot grow the map without bound.
    if (this.windows.size > 10_000) for (const [k, w] of this.windows) if (now >= w.resetAt) this.windows.delete(k);
    const w = this.windows.get(key);
    if (!w || now >= w.resetAt) this.windows.set(key, { failures: 1, resetAt: now + this.windowMs });
    else w.failures++;
  }

  /** Take back one counted try (it succeeded), e.g. the IP's: one right password must not reset a spray. */
  forgive(key: string): void {
    const w = this.windows.get(key);
    if (w && w.failures > 0) w.failures--;
  }

  /** A successful sign-in clears the user name's count. */
  succeed(key: string): void {
    this.windows.delete(key);
  }
}
