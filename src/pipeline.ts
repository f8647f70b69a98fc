import type { Intake } from './intake/accept.js';
import type { ParseAndStore, ParsedNow } from './mime/parse-and-store.js';
import type { Planner } from './routing/plan.js';
import type { DedupPolicy } from './delivery/duplicates.js';
import type { DeliveryQueue } from './delivery/queue.js';
import type { DeliveryWorker } from './delivery/worker.js';
import type { Logger } from './telemetry/log.js';

/**
 * The path of one message, and the only place its steps are joined. Each step is one module;
 * a step hands over to the next through the store, so a crash between two is healed at the
 * next start (the parse poll, `sweep()`, the lease take-back).
 *
 *   1. keep     intake/accept.ts          an ingress hands over envelope and bytes; they are
 *                                         fsynced and committed before the ingress answers
 *   2. parse    mime/parse-and-store.ts   the kept raw is parsed; headers and parts are stored
 *   3. plan     routing/plan.ts           the rules (or a fetched folder's route) give deliveries
 *   4. queue    delivery/queue.ts         the deliveries are stored, pending
 *   5. deliver  delivery/worker.ts        each is leased and handed to targets/<kind>.ts
 */
/** Pins kept at most: a parse backlog past this plans its oldest by the routes in force. */
const MAX_PINNED = 10_000;

export class Pipeline {
  private readonly inFlight = new Set<Promise<void>>();
  /** Message id → the routing generation it was accepted under, until it is planned. */
  private readonly pinned = new Map<string, number>();
  private stopped = false;

  constructor(
    private readonly steps: {
      intake: Intake;
      parser: ParseAndStore;
      planner: Planner;
      queue: DeliveryQueue;
      worker: DeliveryWorker;
      log: Logger;
      /** Copies of one message through two relays are delivered once (delivery/duplicates.ts); absent: every copy. */
      dedup?: DedupPolicy;
    },
  ) {
    const { intake, parser, queue, worker } = steps;
    // 1 → 2: a message just kept is parsed from the bytes still in memory when it is small.
    intake.on('stored', (m, raw, env) => {
      // Planned later by the routes that answered its RCPT TO (core/message.ts routeGeneration).
      if (env.routeGeneration !== undefined) this.pinned.set(m.id, env.routeGeneration);
      if (this.pinned.size > MAX_PINNED) this.pinned.delete(this.pinned.keys().next().value!);
      parser.enqueue(m.id, m, raw);
    });
    // 2 → 3 → 4
    parser.on('parsed', (id, parsed) => void this.plan(id, parsed));
    // 4 → 5: a worker in this process starts at once instead of at its next poll.
    queue.on('enqueued', () => worker.wake());
  }

  /** Start the steps after intake, and finish what a crash left between them. */
  async start(): Promise<void> {
    await this.steps.parser.start();
    await this.sweep();
    await this.steps.worker.reclaimDeadLeases();
    this.steps.worker.start();
  }

  /**
   * Plan a parsed message and queue its deliveries. Errors are logged: the message stays
   * parsed and unplanned, and the sweep at the next start plans it again.
   */
  plan(messageId: string, parsed?: ParsedNow): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const p = this.planAndQueue(messageId, parsed).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
    return p;
  }

  private async planAndQueue(messageId: string, parsed?: ParsedNow): Promise<void> {
    const { planner, queue, log, dedup } = this.steps;
    try {
      const generation = this.pinned.get(messageId);
      this.pinned.delete(messageId);
      const plan = await planner.plan(messageId, parsed, generation);
      if (!plan) return;
      await queue.enqueue(messageId, plan.deliveries, { dedup: dedup && { message: plan.message, policy: dedup } });
    } catch (err) {
      log.error({ err, id: messageId }, 'could not plan deliveries; retried at the next start');
    }
  }

  /** Plan every message parsed but not planned (a crash between 2 and 4). Resolves with how many were tried. */
  async sweep(): Promise<number> {
    let tried = 0;
    for await (const id of this.steps.planner.unplanned()) {
      if (this.stopped) break;
      await this.plan(id);
      tried++;
    }
    return tried;
  }

  /** Take no new work and wait for the steps in flight (before the database closes). */
  async stop(): Promise<void> {
    await this.steps.parser.stop();
    this.stopped = true;
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
    await this.steps.worker.stop();
  }
}
