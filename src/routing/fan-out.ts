import type { PlannedDelivery, Target } from '../core/delivery.js';

/** One recipient taken by one route, with the captures its match produced. */
export interface RoutedRecipient {
  route: { name: string; deliver: readonly { kind: string; params: unknown }[]; /** Quarantined: why (the route's authFailure). */ held?: string };
  recipient: string;
  captures: Record<string, string>;
  /** Sort position of the route (priority order), so deliveries come out in route order. */
  order: number;
}

/**
 * Turn routed recipients into deliveries: one per route, target and destination. Every recipient
 * gets what it would get alone (its own document, spool pair, post, process); two recipients
 * share a delivery only when the target takes several at once (webhook, forward: each keeps its
 * own captures) or names the very same destination for both (one folder under two addresses).
 * Before this, a route's recipients were folded into one delivery carrying the first one's
 * captures, and `ogo+1@`, `ogo+2@` filed into folder 1 only.
 */
export function planDeliveries(routed: readonly RoutedRecipient[], targets: ReadonlyMap<string, Target<any>>): PlannedDelivery[] {
  const merged = new Map<string, PlannedDelivery & { order: number }>();
  for (const { route, recipient, captures, order } of routed) {
    route.deliver.forEach((target, targetIndex) => {
      const t = targets.get(target.kind);
      const destination = t?.takesManyRecipients ? '' : (t?.destination?.(recipient, target.params, captures) ?? recipient.toLowerCase());
      const key = `${route.name}\0${targetIndex}\0${destination}`;
      const have = merged.get(key);
      if (have) {
        if (have.recipients.some((r) => r.toLowerCase() === recipient.toLowerCase())) return;
        have.recipients.push(recipient);
        have.recipientCaptures![recipient] = captures;
        return;
      }
      merged.set(key, {
        route: route.name,
        targetIndex,
        kind: target.kind,
        params: target.params,
        recipients: [recipient],
        captures,
        recipientCaptures: { [recipient]: captures },
        destination,
        ...(route.held ? { held: route.held } : {}),
        order: order * 1000 + targetIndex,
      });
    });
  }
  // Stable: equal orders (one route's destinations) keep the envelope's recipient order.
  return [...merged.values()].sort((a, b) => a.order - b.order).map(({ order: _o, ...p }) => p);
}
