import { setTimeout as sleep } from 'node:timers/promises';
import type { ParsedMessage, PlannedDelivery, Target } from '../core/delivery.js';
import { planDeliveries } from './fan-out.js';
import type { CompiledRoute } from './rules.js';
import type { Db } from '../store/db.js';
import type { Logger } from '../telemetry/log.js';

/** The route name deliveries of `postroom fetch project=…` carry (no configured route made them). */
export const INLINE_ROUTE = 'postroom-fetch';

/** The targets `postroom fetch` kept with the link (JSON `[{kind, params}]`), validated again by each target's params; undefined if any fails. */
function inlineTargets(json: string, targets: ReadonlyMap<string, Target<any>>): { kind: string; params: unknown }[] | undefined {
  let list: unknown;
  try {
    list = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (!Array.isArray(list) || !list.length) return undefined;
  const out: { kind: string; params: unknown }[] = [];
  for (const t of list as { kind?: unknown; params?: unknown }[]) {
    const target = typeof t?.kind === 'string' ? targets.get(t.kind) : undefined;
    const parsed = target?.params.safeParse(t.params);
    if (!target || !parsed?.success) return undefined;
    out.push({ kind: target.kind, params: parsed.data });
  }
  return out;
}

/**
 * Planning for fetched mail whose folder names a route (`route` on the folder, or `postroom
 * fetch --route NAME`): that route's targets take the message for its envelope recipient,
 * whatever the route's recipient pattern says (the Redmine/OpenProject handlers' "project"
 * option). Targets named inline by `postroom fetch project=…` take it the same way. Anything
 * else, or a route name no longer configured, is routed as usual.
 */
export function forcedPlanner(deps: { db: Db; routes: () => readonly CompiledRoute[]; targets: ReadonlyMap<string, Target<any>>; log: Logger }) {
  return async (view: ParsedMessage): Promise<PlannedDelivery[] | undefined> => {
    const m = view.message;
    if (m.ingress !== 'imap' && m.ingress !== 'pop3') return undefined;
    const find = () => deps.db.kysely.selectFrom('mail_links').select(['route', 'deliver']).where('message', '=', m.id).execute();
    let links = await find();
    // The fetcher links a message right after intake kept it; the parser may, rarely, be faster.
    if (!links.length) {
      await sleep(250);
      links = await find();
    }
    const inline = links.find((l) => l.deliver)?.deliver;
    if (inline) {
      const deliver = inlineTargets(inline, deps.targets);
      if (deliver) return planDeliveries(m.rcptTo.map((recipient) => ({ route: { name: INLINE_ROUTE, deliver }, recipient, captures: {}, order: 0 })), deps.targets);
      deps.log.warn({ id: m.id }, 'fetched mail names targets that do not validate; routing it by recipient');
    }
    const name = links.find((l) => l.route)?.route;
    if (!name) return undefined;
    const routes = deps.routes();
    const route = routes.find((r) => r.name === name);
    if (!route) {
      deps.log.warn({ id: m.id, route: name }, 'fetched mail names a route that is not configured; routing it by recipient');
      return undefined;
    }
    // Each envelope recipient as if the route had matched it, with no captures.
    const order = routes.indexOf(route);
    return planDeliveries(
      m.rcptTo.map((recipient) => ({ route: { name: route.name, deliver: route.route.deliver }, recipient, captures: {}, order })),
      deps.targets,
    );
  };
}
