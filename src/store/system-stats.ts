import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export interface SystemStats {
  messages: number;
  /** Deliveries by status (pending, failed, dead, done). */
  deliveries: Record<string, number>;
  /** Messages not parsed yet. */
  parseBacklog: number;
  /** Messages received in each of the last 60 minutes, oldest first. */
  lastHour: number[];
}

/** The numbers the console's System page shows, read in four queries. */
export async function systemStats(db: Kysely<Database>, now = new Date()): Promise<SystemStats> {
  const since = new Date(now.getTime() - 60 * 60_000);
  const [count, byStatus, backlog, recent] = await Promise.all([
    db.selectFrom('messages').select((eb) => eb.fn.countAll<string | number>().as('n')).executeTakeFirst(),
    db.selectFrom('deliveries').select((eb) => ['status', eb.fn.countAll<string | number>().as('n')]).groupBy('status').execute(),
    db.selectFrom('messages').select((eb) => eb.fn.countAll<string | number>().as('n')).where('parse_status', '=', 'pending').executeTakeFirst(),
    // Newest first through the id index, bounded: a flood shows as a full last bar, not a slow page.
    db.selectFrom('messages').select('received_at').where('received_at', '>=', since.toISOString()).orderBy('id', 'desc').limit(100_000).execute(),
  ]);
  const lastHour = new Array<number>(60).fill(0);
  for (const r of recent) {
    const minute = Math.floor((new Date(r.received_at).getTime() - since.getTime()) / 60_000);
    if (minute >= 0 && minute < 60) lastHour[minute]++;
  }
  return {
    messages: Number(count?.n ?? 0),
    deliveries: Object.fromEntries(byStatus.map((r) => [r.status, Number(r.n)])),
    parseBacklog: Number(backlog?.n ?? 0),
    lastHour,
  };
}
