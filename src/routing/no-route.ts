import type { Unrouted } from './router.js';

/** Recorded reasons are cut here: the message list shows them, and a fan-out may have many. */
const MAX = 1000;

/**
 * Why no route took a message, per recipient: each route whose pattern matched and the reason it
 * refused (a null sender on a spool or webhook route, a sender or client not allowed, a header
 * condition not met), or that no route's pattern matches at all. Without it an operator sees
 * only that nothing happened and must re-run the rules by hand to learn why.
 */
export function describeUnrouted(unrouted: readonly Unrouted[]): string {
  const text = unrouted
    .map((u) => {
      const why = u.refusals.length
        ? u.refusals.map((r) => `route "${r.route}" refused: ${r.reason}`).join(', ')
        : 'no route matches this recipient';
      return `<${u.recipient}>: ${why}`;
    })
    .join('; ');
  return text.length > MAX ? `${text.slice(0, MAX - 1)}…` : text;
}
