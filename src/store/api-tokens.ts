import { randomBytes } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { mailError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { transact, type Db } from './db.js';
import type { ApiTokensTable, Database } from './schema.js';
import { secretHash } from './sessions.js';
import { toUser, type User } from './users.js';

type Q = Kysely<Database> | Transaction<Database>;

export type TokenScope = 'read' | 'write';

/**
 * Per-user tokens start with this, so a leaked one is recognisable (secret scanners, logs) and
 * never mistaken for POSTROOM_API_TOKEN.
 */
export const TOKEN_PREFIX = 'prt_';

export interface ApiToken {
  id: string;
  user: string;
  name: string;
  scope: TokenScope;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

function toToken(r: ApiTokensTable, userName: string): ApiToken {
  return { id: r.id, user: userName, name: r.name, scope: r.scope as TokenScope, createdAt: r.created_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at };
}

/** Make a token for a user; the value is returned here once and only its sha256 is kept. */
export async function addToken(db: Db, user: User, t: { name: string; scope: TokenScope }, now = new Date()): Promise<{ token: string; info: ApiToken }> {
  const name = t.name.trim();
  if (!name || name.length > 100) throw mailError('INVALID_REQUEST', 'token name: 1 to 100 characters');
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const row: ApiTokensTable = {
    id: newId('t'),
    user: user.id,
    name,
    scope: t.scope,
    hash: secretHash(token),
    created_at: now.toISOString(),
    last_used_at: null,
    revoked_at: null,
  };
  await transact(db, (trx) => trx.insertInto('api_tokens').values(row).execute());
  return { token, info: toToken(row, user.name) };
}

/** Tokens, newest first: a user's own, or everyone's (`user` undefined). */
export async function listTokens(db: Q, userId?: string): Promise<ApiToken[]> {
  let q = db.selectFrom('api_tokens').innerJoin('users', 'users.id', 'api_tokens.user').selectAll('api_tokens').select('users.name as user_name');
  if (userId !== undefined) q = q.where('api_tokens.user', '=', userId);
  const rows = await q.orderBy('api_tokens.id', 'desc').execute();
  return rows.map(({ user_name, ...r }) => toToken(r, user_name));
}

export async function getToken(db: Q, id: string): Promise<ApiToken | undefined> {
  const r = await db.selectFrom('api_tokens').innerJoin('users', 'users.id', 'api_tokens.user').selectAll('api_tokens').select('users.name as user_name').where('api_tokens.id', '=', id).executeTakeFirst();
  if (!r) return undefined;
  const { user_name, ...row } = r;
  return toToken(row, user_name);
}

/** Revoke a token (kept, marked, so the list shows it was revoked and when); false when unknown. */
export async function revokeToken(db: Db, id: string, now = new Date()): Promise<boolean> {
  return transact(db, async (trx) => {
    const r = await trx.updateTable('api_tokens').set({ revoked_at: now.toISOString() }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    if (Number(r.numUpdatedRows) > 0) return true;
    return !!(await trx.selectFrom('api_tokens').select('id').where('id', '=', id).executeTakeFirst());
  });
}

/**
 * The live token with this value and its (enabled) user, or undefined. Looked up by sha256:
 * an index lookup on a hash leaks nothing useful about the value through timing. Use is
 * recorded at most once a minute.
 */
export async function useToken(db: Db, value: string, now = new Date()): Promise<{ token: ApiToken; user: User } | undefined> {
  if (!value.startsWith(TOKEN_PREFIX)) return undefined;
  const r = await db.kysely
    .selectFrom('api_tokens')
    .innerJoin('users', 'users.id', 'api_tokens.user')
    .selectAll('users')
    .select(['api_tokens.id as tid', 'api_tokens.name as tname', 'api_tokens.scope', 'api_tokens.created_at as tcreated', 'api_tokens.last_used_at', 'api_tokens.revoked_at', 'api_tokens.hash'])
    .where('api_tokens.hash', '=', secretHash(value))
    .executeTakeFirst();
  if (!r || r.revoked_at !== null || r.disabled === 1) return undefined;
  const at = now.toISOString();
  if (!r.last_used_at || now.getTime() - Date.parse(r.last_used_at) >= 60_000) {
    await transact(db, (trx) => trx.updateTable('api_tokens').set({ last_used_at: at }).where('id', '=', r.tid).execute());
  }
  const { tid, tname, scope, tcreated, last_used_at, revoked_at, hash, ...u } = r;
  const user = toUser(u);
  return { user, token: toToken({ id: tid, user: u.id, name: tname, scope, hash, created_at: tcreated, last_used_at, revoked_at }, user.name) };
}
