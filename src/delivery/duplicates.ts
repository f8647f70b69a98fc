import { createHash } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { PlannedDelivery } from '../core/delivery.js';
import type { Database } from '../store/schema.js';

/** When a copy of a message that came through another relay is delivered again. */
export interface DedupPolicy {
  /** How long a delivered (Message-ID, content, recipient, route) stays claimed; 0: never deduplicate. */
  windowMs: number;
  /** Whether a route deduplicates (`dedup: false` on a route turns it off). */
  enabled(route: string): boolean;
}

/** What a message brings to the claim: its header Message-ID and its fingerprint without trace fields. */
export interface ClaimingMessage {
  id: string;
  messageId: string | null;
  contentSha256?: string | null;
}

/**
 * Deliveries are once per (Message-ID, envelope recipient, route) for copies of one message:
 * the same message relayed to us twice differs only in its trace fields (Received:,
 * Return-Path:, X-Original-To:), so its bytes, and so intake's dedup_key, differ, and both were
 * delivered. In the transaction that stores a plan, each recipient and route of it is claimed
 * (a unique key); a claim another message took within the window means an earlier copy had it,
 * and the recipient is dropped from the plan. A body or header that differs under a reused
 * Message-ID gives another fingerprint, so a new message is delivered. A message planned again
 * (after a crash) finds its own claims and keeps its plan.
 */
export async function claimDeliveries(
  trx: Transaction<Database>,
  msg: ClaimingMessage,
  planned: PlannedDelivery[],
  policy: DedupPolicy,
  now: Date,
): Promise<{ planned: PlannedDelivery[]; duplicateOf: string | null }> {
  if (!msg.messageId || !msg.contentSha256 || policy.windowMs <= 0) return { planned, duplicateOf: null };
  const keyOf = (rcpt: string, route: string) =>
    createHash('sha256').update(`${msg.messageId}\0${msg.contentSha256}\0${rcpt.toLowerCase()}\0${route}`).digest('hex');
  const keys = new Set<string>();
  for (const p of planned) if (policy.enabled(p.route)) for (const r of p.recipients) keys.add(keyOf(r, p.route));
  if (!keys.size) return { planned, duplicateOf: null };

  const at = now.toISOString();
  const cutoff = new Date(now.getTime() - policy.windowMs).toISOString();
  const taken = new Map<string, string>();
  const all = [...keys];
  // Chunks keep each statement under SQLite's bound-parameter limit on a wide fan-out.
  for (let i = 0; i < all.length; i += 300) {
    const chunk = all.slice(i, i + 300);
    // A claim older than the window is taken over: the message is delivered again.
    await trx
      .insertInto('delivery_claims')
      .values(chunk.map((key) => ({ key, message: msg.id, created_at: at })))
      .onConflict((oc) =>
        oc
          .column('key')
          .doUpdateSet((eb) => ({ message: eb.ref('excluded.message'), created_at: eb.ref('excluded.created_at') }))
          .where('delivery_claims.created_at', '<', cutoff),
      )
      .execute();
    const rows = await trx.selectFrom('delivery_claims').select(['key', 'message']).where('key', 'in', chunk).execute();
    for (const r of rows) if (r.message !== msg.id) taken.set(r.key, r.message);
  }
  if (!taken.size) return { planned, duplicateOf: null };

  let duplicateOf: string | null = null;
  const kept: PlannedDelivery[] = [];
  for (const p of planned) {
    if (!policy.enabled(p.route)) {
      kept.push(p);
      continue;
    }
    const recipients = p.recipients.filter((r) => {
      const earlier = taken.get(keyOf(r, p.route));
      duplicateOf ??= earlier ?? null;
      return !earlier;
    });
    if (!recipients.length) continue;
    const recipientCaptures = p.recipientCaptures && Object.fromEntries(recipients.map((r) => [r, p.recipientCaptures![r] ?? p.captures]));
    kept.push({ ...p, recipients, captures: recipientCaptures?.[recipients[0]] ?? p.captures, recipientCaptures });
  }
  return { planned: kept, duplicateOf };
}

/** The error a message none of whose recipients is left to deliver carries. */
export function duplicateNote(earlier: string): string {
  return `duplicate of ${earlier} (the same message through another relay): delivered there`;
}
