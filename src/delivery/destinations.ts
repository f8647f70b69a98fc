import type { Target } from '../core/delivery.js';
import type { LeaseCandidate, RouteTarget } from '../store/deliveries.js';

/** The circuit breaker's settings (config `delivery.breaker`). */
export interface BreakerConfig {
  /** Consecutive transient failures that pause a destination. */
  failures: number;
  /** The first pause (ms); each failed probe doubles it. */
  pause: number;
  /** The longest pause (ms). */
  maxPause: number;
}

export const DEFAULT_BREAKER: BreakerConfig = { failures: 5, pause: 30_000, maxPause: 10 * 60_000 };

/** How an attempt ended, as the breaker sees it. */
export type Verdict = 'ok' | 'failed' | 'none';

interface State {
  running: number;
  /** Consecutive transient failures. */
  failures: number;
  /** Paused until then (ms since the epoch); 0 = closed. */
  openUntil: number;
  /** The current pause length, doubled by each failed probe. */
  pause: number;
  /** One delivery is probing a destination whose pause ran out. */
  probing: boolean;
  /** Route targets seen going here: what the lease query leaves out while it is full or paused. */
  pairs: Map<string, RouteTarget>;
}

/** A running attempt's hold on its destination; release it exactly once. */
export interface Slot {
  destination: string;
  probe: boolean;
}

/**
 * Per-destination limits and circuit breakers of one worker (one process). A destination is
 * what a target's `endpoint(params)` names: every route posting to one webhook origin shares
 * it. At most `limit` deliveries run at once per destination, so a destination that accepts
 * connections and never answers holds `limit` workers, not all of them. After `failures`
 * consecutive transient failures it is paused: its deliveries are not leased (no attempt is
 * spent on them) until the pause ends, when one delivery probes it. A probe that succeeds
 * closes the breaker; one that fails pauses it again for twice as long, up to `maxPause`.
 * State is in memory: each node learns on its own, and a restart starts closed.
 */
export class Destinations {
  private readonly states = new Map<string, State>();
  private readonly cache = new Map<string, string | null>();
  /** Admitted in the lease batch being chosen, not yet launched. */
  private batch = new Map<string, number>();

  constructor(
    private readonly targets: ReadonlyMap<string, Target<any>>,
    readonly limit: number,
    private readonly breaker: BreakerConfig,
    private readonly onChange: (destination: string, event: 'paused' | 'closed', detail: { failures: number; pauseMs: number }) => void = () => {},
  ) {}

  /** The destination of a delivery's target params, or null for targets without one. */
  of(kind: string, params: unknown): string | null {
    const raw = typeof params === 'string' ? params : JSON.stringify(params);
    const key = `${kind}\0${raw}`;
    let d = this.cache.get(key);
    if (d !== undefined) return d;
    d = null;
    const target = this.targets.get(kind);
    if (target?.endpoint) {
      const parsed = target.params.safeParse(typeof params === 'string' ? JSON.parse(params) : params);
      if (parsed.success) d = `${kind} ${target.endpoint(parsed.data)}`;
    }
    // Params come from a few configured routes: the cache stays small, but bound it anyway.
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, d);
    return d;
  }

  private state(destination: string): State {
    let s = this.states.get(destination);
    if (!s) this.states.set(destination, (s = { running: 0, failures: 0, openUntil: 0, pause: 0, probing: false, pairs: new Map() }));
    return s;
  }

  /** Where nothing more may start now: full, paused, or probing. */
  private closedTo(s: State, now: number, extra = 0): boolean {
    if (now < s.openUntil) return true;
    if (s.failures >= this.breaker.failures) return s.probing || s.running + extra > 0; // half-open: one probe
    return s.running + extra >= this.limit;
  }

  /** Each destination's state, for logs, metrics and tests. */
  snapshot(now = Date.now()): { destination: string; running: number; failures: number; paused: boolean; pausedUntil: number | null }[] {
    return [...this.states].map(([destination, s]) => ({
      destination,
      running: s.running,
      failures: s.failures,
      paused: now < s.openUntil,
      pausedUntil: now < s.openUntil ? s.openUntil : null,
    }));
  }

  /** Route targets the next lease must leave out. */
  excluded(now = Date.now()): RouteTarget[] {
    const out: RouteTarget[] = [];
    for (const s of this.states.values()) if (this.closedTo(s, now)) out.push(...s.pairs.values());
    return out;
  }

  /** When the earliest pause ends, if any is running (ms since the epoch). */
  nextOpening(now = Date.now()): number | undefined {
    let at: number | undefined;
    for (const s of this.states.values()) if (s.openUntil > now) at = Math.min(at ?? Infinity, s.openUntil);
    return at;
  }

  /** Start choosing one lease batch. */
  beginBatch(): void {
    this.batch = new Map();
  }

  /** Lease this candidate in the batch being chosen? Keeps each destination within its limit. */
  admit = (c: LeaseCandidate): boolean => {
    const d = this.of(c.kind, c.params);
    if (!d) return true;
    const s = this.state(d);
    s.pairs.set(`${c.route}\0${c.targetIndex}`, { route: c.route, targetIndex: c.targetIndex });
    const n = this.batch.get(d) ?? 0;
    if (this.closedTo(s, Date.now(), n)) return false;
    this.batch.set(d, n + 1);
    return true;
  };

  /** A leased delivery starts: it holds a place at its destination until `finish`. */
  start(kind: string, params: unknown, pair: RouteTarget): Slot | undefined {
    const d = this.of(kind, params);
    if (!d) return undefined;
    const s = this.state(d);
    s.pairs.set(`${pair.route}\0${pair.targetIndex}`, pair);
    s.running++;
    const probe = s.failures >= this.breaker.failures && !s.probing;
    if (probe) s.probing = true;
    return { destination: d, probe };
  }

  /**
   * The attempt ended. `ok`: the destination answered (delivered, or refused this one message
   * for a reason of its own), so it is up. `failed`: a transient failure (no answer, 5xx).
   * `none`: says nothing about the destination (shutting down, the delivery out of attempts).
   * Returns whether a place was freed that held deliveries back (the caller leases again).
   */
  finish(slot: Slot | undefined, verdict: Verdict, now = Date.now()): boolean {
    if (!slot) return false;
    const s = this.state(slot.destination);
    const wasClosed = this.closedTo(s, now);
    s.running--;
    if (slot.probe) s.probing = false;
    if (verdict === 'ok') {
      const wasOpen = s.failures >= this.breaker.failures;
      s.failures = 0;
      s.openUntil = 0;
      s.pause = 0;
      if (wasOpen) this.onChange(slot.destination, 'closed', { failures: 0, pauseMs: 0 });
    } else if (verdict === 'failed') {
      s.failures++;
      // A failed probe doubles the pause; the first time past the threshold starts it. Attempts
      // already running when it paused add to the count but do not stretch the pause.
      const first = !slot.probe && s.failures === this.breaker.failures;
      if (slot.probe || first) {
        s.pause = slot.probe ? Math.min(this.breaker.maxPause, Math.max(this.breaker.pause, s.pause * 2)) : this.breaker.pause;
        s.openUntil = now + s.pause;
        this.onChange(slot.destination, 'paused', { failures: s.failures, pauseMs: s.pause });
      }
    }
    return wasClosed && !this.closedTo(s, now);
  }
}
