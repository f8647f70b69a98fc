import os from 'node:os';
import type { DeliveryContext, Receipt, Target } from '../core/delivery.js';
import { asMailError, mailError, MailError, type ErrorCode } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { BlobStore } from '../store/ports.js';
import type { Db } from '../store/db.js';
import {
  finishAttempt,
  leaseForAttempts,
  nextDue,
  readRecipientOutcomes,
  recordRecipientOutcomes,
  renewLease,
  type AttemptResult,
  type LeasedDelivery,
} from '../store/deliveries.js';
import { leaseOwnerId, reclaimDeadLeases } from '../store/delivery-leases.js';
import { pauseTarget } from '../store/paused-targets.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../config/retry.js';
import { nextAttemptAt } from './backoff.js';
import { DEFAULT_BREAKER, Destinations, type BreakerConfig, type Slot, type Verdict } from './destinations.js';
import type { KeepOutbound } from './keep-outbound.js';
import { buildParsedView } from '../mime/parsed-view.js';

/** How far before the first deliverable row a seek starts (see DeliveryWorker.scan). */
const SEEK_MARGIN_MS = 1_000;

export interface DeliveryWorkerConfig {
  /** Deliveries run at once by this process. */
  workers: number;
  /** How long a lease lasts; renewed while the attempt runs, so only a dead worker's expires. */
  leaseTime: number;
  /** How often the store is polled for due deliveries (other nodes', retries, replays). */
  pollInterval: number;
  /** An attempt still running after this is aborted and counts as a transient failure. */
  attemptTimeout: number;
  /** Deliveries run at once per destination; default a quarter of `workers`, at least 1. */
  perDestination?: number;
  /** When a destination that keeps failing is paused, and for how long. */
  breaker?: BreakerConfig;
}

export interface DeliveryWorkerDeps {
  db: Db;
  blobs: BlobStore;
  log: Logger;
  metrics: Metrics;
  targets: ReadonlyMap<string, Target<any>>;
  config: DeliveryWorkerConfig;
  /** The retry policy of a route (routes carry `retry`); DEFAULT_RETRY when undefined. */
  retryPolicy?: (route: string) => RetryPolicy | undefined;
  publicUrl?: string;
  /** Passed to targets, bound to the delivery: keeps a DSN and queues its delivery. */
  keepOutbound?: KeepOutbound;
}

/**
 * Runs due deliveries: leases them from the store, calls `target.deliver` with an abort signal,
 * and records the outcome. Transient ⇒ retried per the route's policy (an upstream's
 * Retry-After is a floor), permanent ⇒ failed, out of attempts or age ⇒ dead with the reason.
 * Every node runs one; the store's leases keep them from running the same delivery twice.
 */
export class DeliveryWorker {
  /** Identifies this worker's leases; unique per start so a restarted process never matches an old lease. */
  readonly owner = leaseOwnerId(newId(), os.hostname());
  private running = false;
  /** Attempts whose target is running: at most `workers`. */
  private inFlight = new Map<string, AbortController>();
  /** Attempts not yet recorded: running, or their outcome being committed (which holds no slot). */
  private unrecorded = 0;
  private ticking = false;
  private again = false;
  /** Something may be due that no lease has taken yet (a wake while every slot was busy, a full batch). */
  private wanted = false;
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (ms since the epoch). */
  private timerAt = 0;
  private waiters: { ready: () => boolean; resolve: () => void }[] = [];
  /**
   * While destinations are held back (full or paused), where the last lease found its first
   * deliverable row: every free due delivery before it belonged to a held-back route target.
   * The next leases seek from there instead of stepping over a stuck destination's backlog
   * (thousands of due rows, read at every lease: 2–3 ms each on SQLite at 5,000, measured, at
   * every enqueue and every finished attempt). Valid while the held-back set does not shrink;
   * renewed by a full scan every poll interval, which finds what the seek cannot know about: a
   * lease that ran out on another node, a row another node's clock dated earlier.
   */
  private scan: { from: string | undefined; held: Set<string>; fullAt: number } | undefined;
  /** Running attempts' places at their destinations. */
  private readonly slots = new Map<string, Slot | undefined>();
  readonly destinations: Destinations;

  constructor(private readonly deps: DeliveryWorkerDeps) {
    const { workers, perDestination, breaker } = deps.config;
    this.destinations = new Destinations(deps.targets, perDestination ?? Math.max(1, Math.floor(workers / 4)), breaker ?? DEFAULT_BREAKER, (dest, event, detail) => {
      if (event === 'paused') deps.log.warn({ destination: dest, ...detail }, 'destination paused after consecutive failures; one delivery will probe it when the pause ends');
      else deps.log.info({ destination: dest }, 'destination answered its probe; deliveries to it resume');
    });
  }

  /**
   * Take back the leases of this host's processes that died (kill -9, crash): their deliveries
   * are due at once instead of after the rest of the lease time. Call before start().
   */
  async reclaimDeadLeases(): Promise<number> {
    const n = await reclaimDeadLeases(this.deps.db, this.owner);
    if (n) this.deps.log.warn({ deliveries: n }, 'took back the delivery leases of a process that died');
    return n;
  }

  /** Start polling; returns at once. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.wake();
  }

  /**
   * Look for due deliveries now (the queue calls this after an enqueue). The poll timer stays
   * armed: it is what finds retries coming due and other nodes' work.
   */
  wake(): void {
    if (!this.running) return;
    this.wanted = true;
    void this.tick();
  }

  /**
   * Stop leasing; give running attempts `graceMs` to finish, then abort them (they are
   * rescheduled as transient failures, and their leases released).
   */
  async stop(graceMs = 5_000): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([this.until(() => !this.inFlight.size), new Promise((r) => (grace = setTimeout(r, graceMs)))]);
    clearTimeout(grace);
    for (const c of this.inFlight.values()) c.abort(mailError('SHUTTING_DOWN'));
    await this.idle();
  }

  /** Resolves when no attempt runs or awaits its record in this process (for tests and benchmarks). */
  idle(): Promise<void> {
    return this.until(() => !this.unrecorded && !this.ticking);
  }

  private until(ready: () => boolean): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ ready, resolve }));
  }

  /** Something ended (a tick, an attempt, an outcome's commit): resolve whoever waited for it. */
  private settle(): void {
    if (!this.waiters.length) return;
    const still = [];
    for (const w of this.waiters) {
      if (w.ready()) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  private async tick(): Promise<void> {
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = true;
    try {
      do {
        this.again = false;
        if (!this.running) break;
        const free = this.deps.config.workers - this.inFlight.size;
        // Every slot busy: the next slot released looks again.
        if (free <= 0) this.wanted = true;
        else {
          this.destinations.beginBatch();
          const exclude = this.destinations.excluded();
          const seek = this.seekFrom(exclude);
          const leased = await leaseForAttempts(this.deps.db, {
            owner: this.owner,
            leaseMs: this.deps.config.leaseTime,
            limit: free,
            exclude,
            admit: this.destinations.admit,
            dueFrom: seek.from,
            onScan: (first) => this.scanned(seek, first),
          });
          for (const d of leased) this.launch(d);
          // A full batch: there may be more due. Fewer: nothing else is, until the next wake
          // (one that came while we leased set `again`, and we go round once more).
          if (leased.length === free) this.again = true;
          else this.wanted = false;
        }
        // An armed timer already bounds the wait for what is not due yet: no need to ask again.
        if (!this.again && !this.timer) await this.schedule();
        // A wake that came while we were leasing or scheduling loops here (it is not lost).
      } while (this.again && this.running);
    } catch (err) {
      this.deps.log.error({ err }, 'delivery worker could not lease; retrying after the poll interval');
      this.arm(this.deps.config.pollInterval);
    } finally {
      this.ticking = false;
      this.settle();
    }
  }

  /** Where the next lease (or nextDue) may start looking, given what is held back now. */
  private seekFrom(exclude: readonly { route: string; targetIndex: number }[]): { from: string | undefined; held: Set<string>; fullAt: number; at: string } {
    const held = new Set(exclude.map((x) => `${x.route}\0${x.targetIndex}`));
    const at = new Date().toISOString();
    const s = this.scan;
    const fresh = s && Date.now() - s.fullAt < this.deps.config.pollInterval && [...s.held].every((k) => held.has(k));
    return fresh && held.size ? { from: s.from, held, fullAt: s.fullAt, at } : { from: undefined, held, fullAt: Date.now(), at };
  }

  /** A lease (or nextDue) ran from `seek`: remember where the first deliverable row was. */
  private scanned(seek: { from: string | undefined; held: Set<string>; fullAt: number; at: string }, first: string | undefined): void {
    // Nothing held back: the scan is short anyway, and a seek would only add a way to miss a row.
    if (!seek.held.size) this.scan = undefined;
    // None found: every free due row (up to when this one started) was held back. A second
    // back: a delivery planned just before this lease began, whose insert committed just after
    // it read, is dated a little before it and must still be found at once.
    else {
      this.scan = { from: new Date(Date.parse(first ?? seek.at) - SEEK_MARGIN_MS).toISOString(), held: seek.held, fullAt: seek.fullAt };
    }
  }

  /** Sleep until the earliest due delivery or the poll interval, whichever comes first. */
  private async schedule(): Promise<void> {
    if (!this.running) return;
    let wait = this.deps.config.pollInterval;
    // Every slot busy: the next finished attempt wakes us; polling sooner would only spin.
    if (this.inFlight.size >= this.deps.config.workers) return this.arm(wait);
    // Full or paused destinations are left out: their due deliveries must not make us spin. A
    // full one frees a place when an attempt ends (release wakes us); a pause ends on a timer.
    const exclude = this.destinations.excluded();
    const due = await nextDue(this.deps.db.kysely, new Date(), exclude, this.seekFrom(exclude).from);
    if (due) wait = Math.min(wait, Math.max(0, due.getTime() - Date.now()));
    const opening = this.destinations.nextOpening();
    if (opening) wait = Math.min(wait, Math.max(0, opening - Date.now()));
    this.arm(wait);
  }

  /** Make sure the worker looks again within `ms` (an earlier wake-up already armed stays). */
  private arm(ms: number): void {
    if (!this.running) return;
    const at = Date.now() + ms;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.wake();
    }, ms);
    this.timer.unref?.();
  }

  private launch(d: LeasedDelivery): void {
    const controller = new AbortController();
    this.inFlight.set(d.id, controller);
    this.slots.set(d.id, this.destinations.start(d.kind, d.params, { route: d.route, targetIndex: d.targetIndex }));
    this.unrecorded++;
    void this.attempt(d, controller)
      .catch((err) => this.deps.log.error({ err, delivery: d.id }, 'could not record a delivery attempt; its lease will expire and it runs again'))
      .finally(() => {
        this.unrecorded--;
        this.release(d.id);
        this.settle();
      });
  }

  /**
   * The target is done with this delivery: its slot goes to the next due one while the outcome
   * commits (an fsync). The lease is still ours until that commit, so nobody else takes it.
   */
  private release(id: string, verdict: Verdict = 'none'): void {
    if (!this.inFlight.delete(id)) return;
    const slot = this.slots.get(id);
    this.slots.delete(id);
    // A place at a full (or probed) destination came free: its waiting deliveries may go now.
    if (this.destinations.finish(slot, verdict)) this.wanted = true;
    this.settle();
    // Lease again only when something may be waiting for this slot: after each attempt, an
    // empty lease (a write transaction) per delivery would cost more than the delivery's own.
    if (this.running && this.wanted) void this.tick();
  }

  private async attempt(d: LeasedDelivery, stop: AbortController): Promise<void> {
    const { db, log, metrics, config } = this.deps;
    const policy = this.deps.retryPolicy?.(d.route) ?? DEFAULT_RETRY;
    const n = d.attempts;
    const firstAt = new Date(d.firstAttemptAt ?? Date.now());
    const ids = { id: d.id, messageId: d.messageId, owner: this.owner, attemptId: d.attemptId };

    // Attempts are counted when leased, so a delivery that kills its worker every time still ends.
    const exhausted =
      n > policy.maxAttempts
        ? `gave up after ${n - 1} attempts`
        : Date.now() - firstAt.getTime() > policy.maxAge
          ? `gave up: older than maxAge ${policy.maxAge} ms`
          : undefined;
    if (exhausted) {
      let reason = d.lastError ? `${exhausted}; last error: ${d.lastError}` : exhausted;
      reason += await this.announceDeath(d, n, reason);
      await finishAttempt(db, ids, { outcome: 'dead', error: reason });
      metrics.deliveries.inc({ kind: d.kind, outcome: 'dead' });
      log.warn({ delivery: d.id, route: d.route, reason }, 'delivery dead');
      return;
    }

    const started = Date.now();
    const timeout = AbortSignal.timeout(config.attemptTimeout);
    const signal = AbortSignal.any([stop.signal, timeout]);
    // Keep the lease while the attempt runs; only a dead worker's lease should run out.
    const heartbeat = setInterval(() => {
      void renewLease(db.kysely, d.id, this.owner, new Date(Date.now() + config.leaseTime)).catch(() => {});
    }, Math.max(50, Math.floor(config.leaseTime / 3)));
    heartbeat.unref?.();

    let result: AttemptResult;
    let code: ErrorCode | undefined;
    try {
      const receipt = await this.deliver(d, n, signal);
      result = { outcome: 'done', receipt };
    } catch (thrown) {
      let err = asMailError(thrown);
      if (!(thrown instanceof MailError) && timeout.aborted) err = mailError('TARGET_TIMEOUT', `attempt timed out after ${config.attemptTimeout} ms`);
      if (!(thrown instanceof MailError) && stop.signal.aborted) err = mailError('SHUTTING_DOWN');
      result = this.judge(err, policy, n, firstAt, stop.signal.aborted);
      code = err.code;
      if (err.code === 'INTERNAL') log.error({ err: thrown, delivery: d.id }, 'target threw an unexpected error');
    } finally {
      clearInterval(heartbeat);
    }
    if (result.outcome === 'dead') result = { ...result, error: `${result.error}${await this.announceDeath(d, n, result.error ?? 'dead')}` };
    if (code === 'TARGET_GONE') {
      // 410 Gone: hold the rest of this route target's queue (persisted, so a restart or another
      // node does not try it either) until an operator resumes it. Before the attempt's finish:
      // a crash between the two repeats the attempt, and the pause is taken again.
      await pauseTarget(db, {
        route: d.route,
        targetIndex: d.targetIndex,
        kind: d.kind,
        destination: this.destinations.of(d.kind, d.params),
        reason: result.error ?? 'gone',
        delivery: d.id,
      });
      log.warn({ delivery: d.id, route: d.route, targetIndex: d.targetIndex, error: result.error }, 'target gone: route target paused until resumed');
    }
    // For the destination's breaker: a transient failure (also the last one, that made it dead)
    // counts against it; delivered or refused for a reason of its own, it is up.
    this.release(d.id, stop.signal.aborted ? 'none' : result.outcome === 'transient' || result.outcome === 'dead' ? 'failed' : 'ok');
    metrics.deliveryAttemptSeconds.observe({ kind: d.kind }, (Date.now() - started) / 1000);
    metrics.deliveries.inc({ kind: d.kind, outcome: result.outcome });
    const kept = await finishAttempt(db, ids, result);
    if (!kept) log.warn({ delivery: d.id }, 'lease lost during the attempt; another worker owns this delivery now');
    // Our own retry: wake up for it rather than find it at a later poll.
    else if (result.nextAttemptAt) this.arm(Math.max(0, result.nextAttemptAt.getTime() - Date.now()));
    const logLine = { delivery: d.id, route: d.route, kind: d.kind, attempt: n, outcome: result.outcome, error: result.error };
    if (result.outcome === 'done') log.debug(logLine, 'delivered');
    else log.info({ ...logLine, next: result.nextAttemptAt }, 'delivery attempt failed');
  }

  /** What a failure means for this delivery: retry at a time, failed, or dead. */
  private judge(err: MailError, policy: RetryPolicy, n: number, firstAt: Date, stopping: boolean): AttemptResult {
    const error = `${err.status} ${err.message}`;
    const base = { error, enhancedStatus: err.status };
    if (stopping) return { ...base, outcome: 'transient', nextAttemptAt: new Date() };
    if (!err.transient) return { ...base, outcome: 'permanent' };
    const at = nextAttemptAt(policy, n + 1, firstAt, new Date(), (err.retryAfter ?? 0) * 1000);
    if (!at) {
      const why = n + 1 > policy.maxAttempts ? `gave up after ${n} attempts` : `gave up: the next retry would pass maxAge ${policy.maxAge} ms`;
      return { ...base, outcome: 'dead', error: `${why}; last error: ${error}` };
    }
    return { ...base, outcome: 'transient', nextAttemptAt: at };
  }

  /**
   * A delivery died: let its target tell whoever must know (the forward target's DSN for the
   * recipients still undelivered). Resolves with a note for the error; a failure to do so is
   * logged and noted, and the delivery is dead all the same.
   */
  private async announceDeath(d: LeasedDelivery, n: number, reason: string): Promise<string> {
    const target = this.deps.targets.get(d.kind);
    if (!target?.dead) return '';
    try {
      const params = target.params.parse(d.params);
      const msg = await buildParsedView(this.deps, d.messageId);
      const note = await target.dead(msg, params, this.context(d, n, AbortSignal.timeout(this.deps.config.attemptTimeout)), reason);
      return note ? ` (${note})` : '';
    } catch (err) {
      this.deps.log.error({ err, delivery: d.id }, 'could not report a dead delivery (DSN)');
      return ` (could not report it: ${(err as Error).message})`;
    }
  }

  private context(d: LeasedDelivery, n: number, signal: AbortSignal): DeliveryContext {
    const keep = this.deps.keepOutbound;
    const db = this.deps.db;
    return {
      deliveryId: d.id,
      attempt: n,
      route: d.route,
      recipients: d.recipients,
      captures: d.captures,
      recipientCaptures: d.recipientCaptures,
      signal,
      publicUrl: this.deps.publicUrl,
      // Keyed by this delivery: a replay, or a retaken lease after a crash, finds the DSN the
      // first attempt kept instead of bouncing to the sender twice.
      keepOutbound: keep && ((envelope, raw) => keep(envelope, raw, { source: d.id })),
      recipientOutcomes: {
        read: () => readRecipientOutcomes(db.kysely, d.id),
        record: (outcomes) => recordRecipientOutcomes(db, d.id, outcomes),
      },
    };
  }

  private async deliver(d: LeasedDelivery, n: number, signal: AbortSignal): Promise<Receipt> {
    const target = this.deps.targets.get(d.kind);
    if (!target) throw mailError('MISCONFIGURED', `no target of kind '${d.kind}'`);
    const parsed = target.params.safeParse(d.params);
    if (!parsed.success) {
      throw mailError('MISCONFIGURED', `params of ${d.kind} target invalid: ${parsed.error.message}`);
    }
    const msg = await buildParsedView(this.deps, d.messageId);
    return target.deliver(msg, parsed.data, this.context(d, n, signal));
  }
}
