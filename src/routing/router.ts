import type { lookup } from 'node:dns/promises';
import type { ParsedMessage, PlannedDelivery, Target } from '../core/delivery.js';
import { planDeliveries, type RoutedRecipient } from './fan-out.js';
import { asMailError, mailError, type MailError } from '../core/errors.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../config/retry.js';
import type { RecipientCheck } from '../core/message.js';
import { compileRoute, type CompiledRoute, type ContentFacts, type EnvelopeFacts } from './rules.js';
import type { Route } from './schema.js';
import type { AuthVerdict } from '../core/auth.js';

/**
 * Routes in priority order, evaluated per envelope recipient (never on To:, so Bcc and
 * forwarded mail route). For one recipient: each route whose recipient pattern matches and
 * whose conditions hold delivers it; `continue: false` (the default) stops there, `continue:
 * true` lets later routes deliver too (fan-out). Catch-all routes take only recipients no
 * other route took or refused. A route that refuses the sender or client does not stop the
 * search (a later route may take that sender), but if none takes the recipient the first
 * refusal is the answer (550 5.7.1); no route at all is 550 5.1.1.
 */

/** A route whose recipient pattern matched but which did not take the recipient, and why. */
export interface RouteRefusal {
  route: string;
  reason: string;
}

/** A recipient's routes, or why it has none. */
export interface RecipientDecision {
  recipient: string;
  matches: { route: CompiledRoute; captures: Record<string, string> }[];
  refusal?: MailError;
  /** Every route that matched the recipient but refused it (sender, client, content…), in order. */
  refusals: RouteRefusal[];
  /** A route took the null sender to deliver nothing (`anonymous: ignore`): kept, not unrouted. */
  ignored?: boolean;
}

/** A recipient no route took: the answer an SMTP client would get, and each route's reason. */
export interface Unrouted {
  recipient: string;
  error: MailError;
  refusals: RouteRefusal[];
}

export interface Router {
  readonly routes: readonly CompiledRoute[];
  /** The RCPT-time hook: resolves to accept, throws MailError 550 5.1.1 / 550 5.7.1 / a reject target's reply. */
  recipientCheck(): RecipientCheck;
  /** Decide one recipient; without `content` the content conditions count as passed (RCPT time). */
  decide(rcpt: string, env: EnvelopeFacts, content?: ContentFacts): Promise<RecipientDecision>;
  /** Planned deliveries for a parsed message, plus the recipients nothing routes (and why). */
  evaluate(parsed: ParsedMessage): Promise<{ deliveries: PlannedDelivery[]; unrouted: Unrouted[] }>;
  /** Planned deliveries for a parsed message: one per route, target and destination (routing/plan.ts). */
  plan(parsed: ParsedMessage): Promise<PlannedDelivery[]>;
  /** The retry policy of a route (its own, else the default). */
  retryPolicy(route: string): RetryPolicy;
  /**
   * The end-of-DATA refusal for a verdict: when every recipient's routes say `authFailure:
   * refuse` and the verdict fails them. A transaction has one reply for all its recipients, so
   * when only some would refuse, the message is kept and those routes' deliveries are held.
   */
  authRefusal(verdict: AuthVerdict, env: EnvelopeFacts, rcptTo: readonly string[]): Promise<MailError | undefined>;
}

/** Build the router from validated routes and the target registry (for RCPT-time target checks). */
export function createRouter(
  routes: readonly Route[],
  targets: ReadonlyMap<string, Target<any>>,
  opts: {
    resolve?: typeof lookup;
    /**
     * Routes tried after all of `routes` (those managed through the API, behind the config
     * file's), in their own priority order: the file stays what the operator deployed, and a
     * route added through the API cannot take mail a file route takes.
     */
    after?: readonly Route[];
  } = {},
): Router {
  // Stable sort: equal priorities keep file order.
  const byPriority = (list: readonly Route[]) =>
    list
      .map((r, i) => ({ r, i }))
      .sort((a, b) => a.r.priority - b.r.priority || a.i - b.i)
      .map(({ r }) => r);
  const compiled = [...byPriority(routes), ...byPriority(opts.after ?? [])].map((r) => compileRoute(r, opts.resolve));
  const normal = compiled.filter((c) => !c.route.catchAll);
  const catchAll = compiled.filter((c) => c.route.catchAll);
  const byName = new Map([...(opts.after ?? []), ...routes].map((r) => [r.name, r]));

  /** RCPT time only: the targets' own checks (a reject target refuses here). */
  async function targetRefusal(c: CompiledRoute, rcpt: string, captures: Record<string, string>, env: EnvelopeFacts) {
    for (const d of c.route.deliver) {
      const t = targets.get(d.kind);
      if (!t?.check) continue;
      try {
        await t.check(rcpt, d.params, { captures, authUser: env.authUser ?? undefined, mailFrom: env.mailFrom, headerFrom: env.headerFrom });
      } catch (err) {
        return asMailError(err);
      }
    }
    return null;
  }

  async function walk(list: CompiledRoute[], rcpt: string, env: EnvelopeFacts, content: ContentFacts | undefined) {
    const matches: RecipientDecision['matches'] = [];
    const refusals: RouteRefusal[] = [];
    let refusal: MailError | undefined;
    let ignored = false;
    for (const c of list) {
      const captures = c.matchRecipient(rcpt);
      if (!captures) continue;
      if (content && !env.mailFrom && c.ignoresNullSender) {
        // Accepted at RCPT, then nothing: a bounce answered with a bounce would loop.
        ignored = true;
        refusals.push({ route: c.name, reason: 'null sender: accepted, not processed (anonymous: ignore)' });
        if (!c.route.continue) break;
        continue;
      }
      const denied = await c.checkEnvelope(env);
      if (denied) {
        refusal ??= denied;
        refusals.push({ route: c.name, reason: `${denied.status} ${denied.message}` });
        continue;
      }
      if (content) {
        const unmet = c.checkContent(content);
        if (unmet !== null) {
          refusals.push({ route: c.name, reason: unmet });
          continue;
        }
      } else if (!c.waitsForData) {
        // The route's verdict is final here, so its target may refuse (reject) now.
        const refused = await targetRefusal(c, rcpt, captures, env);
        if (refused) {
          refusal ??= refused;
          refusals.push({ route: c.name, reason: `${refused.status} ${refused.message}` });
          if (!c.route.continue) break;
          continue;
        }
      }
      matches.push({ route: c, captures });
      if (!c.route.continue) break;
    }
    return { matches, refusal, refusals, ignored };
  }

  async function decide(rcpt: string, env: EnvelopeFacts, content?: ContentFacts): Promise<RecipientDecision> {
    const first = await walk(normal, rcpt, env, content);
    if (first.matches.length || first.refusal || first.ignored) return { recipient: rcpt, ...first };
    const second = await walk(catchAll, rcpt, env, content);
    return { recipient: rcpt, ...second, refusals: [...first.refusals, ...second.refusals] };
  }

  async function evaluate(parsed: ParsedMessage) {
    const msg = parsed.message;
    const env: EnvelopeFacts = { mailFrom: msg.mailFrom, clientIp: msg.clientIp, authUser: msg.authUser };
    const content: ContentFacts = {
      headers: parsed.headers,
      size: msg.size,
      parts: parsed.parts,
      from: parsed.addresses.from ?? [],
      defects: msg.defects ?? [],
      unparsable: msg.parseStatus === 'raw',
      auth: msg.auth ?? null,
    };
    const routed: RoutedRecipient[] = [];
    const unrouted: Unrouted[] = [];
    // The same recipient twice in the envelope is one recipient.
    const seen = new Set<string>();
    for (const rcpt of msg.rcptTo) {
      if (seen.has(rcpt.toLowerCase())) continue;
      seen.add(rcpt.toLowerCase());
      const d = await decide(rcpt, env, content);
      if (!d.matches.length) {
        if (d.ignored) continue;
        unrouted.push({ recipient: rcpt, error: d.refusal ?? mailError('UNKNOWN_RECIPIENT', `No route for <${rcpt}>`), refusals: d.refusals });
        continue;
      }
      for (const { route, captures } of d.matches) {
        // A failing verdict keeps this route's deliveries held (quarantine; or refuse, when the
        // transaction could not be refused because other recipients' routes took it).
        const failing = route.authFailing(content.auth);
        const held = failing ? `quarantined by route ${route.name}: ${failing.error.status} ${failing.error.message}` : undefined;
        routed.push({ route: { name: route.name, deliver: route.route.deliver, held }, recipient: rcpt, captures, order: compiled.indexOf(route) });
      }
    }
    const deliveries = planDeliveries(routed, targets);
    return { deliveries, unrouted };
  }

  return {
    routes: compiled,
    decide,
    evaluate,
    async plan(parsed) {
      return (await evaluate(parsed)).deliveries;
    },
    recipientCheck() {
      return async (rcpt, ctx) => {
        // No routes configured: mail is kept in the store and routed nowhere; refuse nothing.
        if (!compiled.length) return;
        const d = await decide(rcpt, { mailFrom: ctx.mailFrom, clientIp: ctx.clientIp, authUser: ctx.authUser, headerFrom: ctx.headerFrom });
        if (d.matches.length && ctx.routeListedOnly && d.matches.some((m) => !m.route.route.match.clients)) {
          throw mailError('NOT_AUTHORISED', `Client ${ctx.clientIp ?? '(unknown)'} not allowed to send to this recipient`);
        }
        if (d.matches.length) {
          const requireMessageId = d.matches.some((m) => m.route.route.deliver.some((x) => targets.get(x.kind)?.requiresMessageId));
          return { requireMessageId };
        }
        throw d.refusal ?? mailError('UNKNOWN_RECIPIENT', `No such recipient here: <${rcpt}>`);
      };
    },
    retryPolicy(name) {
      return byName.get(name)?.retry ?? DEFAULT_RETRY;
    },
    async authRefusal(verdict, env, rcptTo) {
      if (!compiled.some((c) => c.route.authFailure?.action === 'refuse')) return undefined;
      let first: MailError | undefined;
      for (const rcpt of rcptTo) {
        const d = await decide(rcpt, env);
        if (!d.matches.length) return undefined;
        for (const m of d.matches) {
          const f = m.route.authFailing(verdict);
          if (f?.action !== 'refuse') return undefined;
          first ??= f.error;
        }
      }
      return first;
    },
  };
}
