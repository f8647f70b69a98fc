import { createHash, randomBytes } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { transact, type Db } from './db.js';
import type { Database } from './schema.js';
import { toUser, type User } from './users.js';

type Q = Kysely<Database> | Transaction<Database>;

/** sha256 (hex) of a secret: what the store keeps of session cookies and API tokens. */
export const secretHash = (secret: string) => createHash('sha256').update(secret).digest('hex');

export interface SessionTimes {
  /** Milliseconds without a request after which the session is gone. */
  idleTimeout: number;
  /** Milliseconds after sign-in after which it is gone however active. */
  maxAge: number;
}

export interface Session {
  id: string;
  user: User;
  csrfToken: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
}

/**
 * Start a session: the returned `token` goes into the cookie and is never stored (only its
 * sha256, the session id), so reading the database does not give anyone a session.
 */
export async function createSession(db: Db, user: User, times: SessionTimes, now = new Date()): Promise<{ token: string; session: Session }> {
  const token = randomBytes(32).toString('base64url');
  const at = now.toISOString();
  const row = {
    id: secretHash(token),
    user: user.id,
    csrf_token: randomBytes(32).toString('base64url'),
    created_at: at,
    last_seen_at: at,
    expires_at: new Date(now.getTime() + times.maxAge).toISOString(),
  };
  await transact(db, async (trx) => {
    // Sessions that ended are removed as new ones start: no sweeper to run.
    await trx.deleteFrom('sessions').where('expires_at', '<', at).execute();
    await trx.insertInto('sessions').values(row).execute();
  });
  return { token, session: { id: row.id, user, csrfToken: row.csrf_token, createdAt: at, lastSeenAt: at, expiresAt: row.expires_at } };
}

/**
 * The live session a cookie token names, with its user; undefined when unknown, idle too long,
 * past its end, or its user is disabled. An ended session is deleted. Use slides the idle time
 * forward, written at most every tenth of the idle timeout (one write per request would make
 * every read a write).
 */
export async function touchSession(db: Db, token: string, times: SessionTimes, now = new Date()): Promise<Session | undefined> {
  const id = secretHash(token);
  const r = await db.kysely
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user')
    .selectAll('users')
    .select(['sessions.id as sid', 'sessions.csrf_token', 'sessions.created_at as s_created', 'sessions.last_seen_at', 'sessions.expires_at'])
    .where('sessions.id', '=', id)
    .executeTakeFirst();
  if (!r) return undefined;
  const t = now.getTime();
  const lastSeen = Date.parse(r.last_seen_at);
  if (t >= Date.parse(r.expires_at) || t - lastSeen >= times.idleTimeout || r.disabled === 1) {
    await endSession(db, token);
    return undefined;
  }
  let lastSeenAt = r.last_seen_at;
  if (t - lastSeen >= Math.min(60_000, times.idleTimeout / 10)) {
    lastSeenAt = now.toISOString();
    await transact(db, (trx) => trx.updateTable('sessions').set({ last_seen_at: lastSeenAt }).where('id', '=', id).execute());
  }
  const { sid: _sid, csrf_token, s_created, last_seen_at: _l, expires_at, ...user } = r;
  return { id, user: toUser(user), csrfToken: csrf_token, createdAt: s_created, lastSeenAt, expiresAt: expires_at };
}

/** Sign out: the session is deleted. */
export async function endSession(db: Db, token: string): Promise<void> {
  await transact(db, (trx) => trx.deleteFrom('sessions').where('id', '=', secretHash(token)).execute());
}

/** Sessions of a user (for tests and the console's "signed in elsewhere"). */
export async function countSessions(db: Q, userId: string): Promise<number> {
  const r = await db.selectFrom('sessions').select((eb) => eb.fn.countAll<number | string>().as('n')).where('user', '=', userId).executeTakeFirst();
  return Number(r?.n ?? 0);
}
