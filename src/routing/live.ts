import type { AuthVerdict } from '../core/auth.js';
import type { ParsedMessage } from '../core/delivery.js';
import type { RecipientCheck } from '../core/message.js';
import type { EnvelopeFacts, ContentFacts } from './rules.js';
import type { Router } from './router.js';

/** Where a route in force comes from: the config file (read-only through the API) or the API (versioned, in the store). */
export type RouteSource = { source: 'file' } | { source: 'api'; version: number; updatedBy: string; updatedAt: string };

/** One set of routes in force: a router and the source of each of its routes. */
export interface RoutingGeneration {
  generation: number;
  router: Router;
  sources: ReadonlyMap<string, RouteSource>;
}

/**
 * How many earlier generations are kept for the mail that began under them: a message whose
 * RCPT TO was answered by one generation is planned by the same (see `at`). A message older
 * than that many changes (a parse backlog across many reloads) is planned by the routes in
 * force, as after a restart.
 */
const KEPT = 32;

/**
 * The router in force, swapped whole when the config is reloaded or a route changes through the
 * API. It is itself a Router that asks the current generation at each call, for the callers
 * that need no pinning (the API's route listing and tester, the worker's retry policies); an
 * SMTP session takes `current()` once at its start and keeps it to its end, so a reload never
 * changes the rules under a transaction in progress.
 */
export class LiveRouter implements Router {
  private gen: RoutingGeneration;
  private readonly kept = new Map<number, RoutingGeneration>();

  constructor(first: Router, sources: ReadonlyMap<string, RouteSource>) {
    this.gen = { generation: 1, router: first, sources };
    this.kept.set(1, this.gen);
  }

  /** The generation in force now. */
  current(): RoutingGeneration {
    return this.gen;
  }

  /** A generation still kept, else undefined (the caller then uses the current one). */
  at(generation: number): RoutingGeneration | undefined {
    return this.kept.get(generation);
  }

  /** Put a new router in force; calls in progress finish on the one they started with. */
  swap(router: Router, sources: ReadonlyMap<string, RouteSource>): RoutingGeneration {
    this.gen = { generation: this.gen.generation + 1, router, sources };
    this.kept.set(this.gen.generation, this.gen);
    for (const g of this.kept.keys()) if (g <= this.gen.generation - KEPT) this.kept.delete(g);
    return this.gen;
  }

  get routes(): Router['routes'] {
    return this.gen.router.routes;
  }

  recipientCheck(): RecipientCheck {
    return (rcpt, ctx) => this.gen.router.recipientCheck()(rcpt, ctx);
  }

  decide(rcpt: string, env: EnvelopeFacts, content?: ContentFacts) {
    return this.gen.router.decide(rcpt, env, content);
  }

  evaluate(parsed: ParsedMessage) {
    return this.gen.router.evaluate(parsed);
  }

  plan(parsed: ParsedMessage) {
    return this.gen.router.plan(parsed);
  }

  authRefusal(verdict: AuthVerdict, env: EnvelopeFacts, rcptTo: readonly string[]) {
    return this.gen.router.authRefusal(verdict, env, rcptTo);
  }

  /** The route's policy in the newest generation that has it: a route removed since still retries its deliveries as it said. */
  retryPolicy(route: string) {
    for (const g of [...this.kept.values()].reverse()) {
      if (g.router.routes.some((r) => r.name === route)) return g.router.retryPolicy(route);
    }
    return this.gen.router.retryPolicy(route);
  }

  /** Whether copies of one message are dropped for this route (its `dedup`, true when unknown). */
  dedup(route: string): boolean {
    const r = this.gen.router.routes.find((c) => c.name === route);
    return r ? r.route.dedup !== false : true;
  }
}
