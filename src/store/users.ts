import type { Kysely, Transaction } from 'kysely';
import { mailError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { hashPassword, verifyPassword } from '../core/passwords.js';
import { transact, type Db } from './db.js';
import type { Database, UsersTable } from './schema.js';

type Q = Kysely<Database> | Transaction<Database>;

/** What a user may do: viewer reads; operator also replays, approves, resumes; admin everything. */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** True when `have` includes the powers of `need` (the roles are nested). */
export function roleAtLeast(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/** A user as the API and the CLI show it (never the hash). */
export interface User {
  id: string;
  name: string;
  role: Role;
  disabled: boolean;
  createdAt: string;
  updatedAt: string;
}

/** User names: what a person types at sign-in; no spaces or controls, so logs and the audit stay unambiguous. */
export const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

/** scrypt cost for new hashes from `http.signIn.scryptCost` (log2 N); r=8, p=1 as RFC 7914 §2 recommends. */
export const scryptCost = (log2N: number) => ({ N: 2 ** log2N, r: 8, p: 1 });

export function toUser(r: UsersTable): User {
  return { id: r.id, name: r.name, role: r.role as Role, disabled: r.disabled === 1, createdAt: r.created_at, updatedAt: r.updated_at };
}

function checkName(name: string): void {
  if (!USER_NAME.test(name)) throw mailError('INVALID_REQUEST', `user name '${name.slice(0, 80)}': use letters, digits, '.', '_', '@' or '-' (at most 64)`);
}

function checkPassword(password: string): void {
  // NIST SP 800-63B §5.1.1.2: at least 8 characters; long passphrases allowed (scrypt takes any length).
  if (password.length < 8) throw mailError('INVALID_REQUEST', 'password: at least 8 characters');
  if (password.length > 1024) throw mailError('INVALID_REQUEST', 'password: at most 1024 characters');
}

export async function getUserByName(db: Q, name: string): Promise<UsersTable | undefined> {
  return db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
}

export async function listUsers(db: Q): Promise<User[]> {
  return (await db.selectFrom('users').selectAll().orderBy('name').execute()).map(toUser);
}

/** Add a user; CONFLICT when the name is taken. */
export async function addUser(db: Db, u: { name: string; role: Role; password: string }, log2N: number, now = new Date()): Promise<User> {
  checkName(u.name);
  checkPassword(u.password);
  const hash = await hashPassword(u.password, scryptCost(log2N));
  const at = now.toISOString();
  const row: UsersTable = { id: newId('u'), name: u.name, role: u.role, password_hash: hash, disabled: 0, created_at: at, updated_at: at };
  return transact(db, async (trx) => {
    if (await getUserByName(trx, u.name)) throw mailError('CONFLICT', `user '${u.name}' exists`);
    await trx.insertInto('users').values(row).execute();
    return toUser(row);
  });
}

/**
 * Change a user's role, password or disabled flag. A new password or disabling signs the user
 * out everywhere (their sessions are deleted): whoever held the old password keeps nothing.
 */
export async function updateUser(
  db: Db,
  name: string,
  change: { role?: Role; password?: string; disabled?: boolean },
  log2N: number,
  now = new Date(),
): Promise<User> {
  if (change.password !== undefined) checkPassword(change.password);
  const hash = change.password === undefined ? undefined : await hashPassword(change.password, scryptCost(log2N));
  return transact(db, async (trx) => {
    const row = await getUserByName(trx, name);
    if (!row) throw mailError('NOT_FOUND', `no user '${name}'`);
    const next: UsersTable = {
      ...row,
      ...(change.role ? { role: change.role } : {}),
      ...(hash ? { password_hash: hash } : {}),
      ...(change.disabled === undefined ? {} : { disabled: change.disabled ? 1 : 0 }),
      updated_at: now.toISOString(),
    };
    await keepAnAdmin(trx, row, next);
    await trx.updateTable('users').set(next).where('id', '=', row.id).execute();
    if (hash || change.disabled) await trx.deleteFrom('sessions').where('user', '=', row.id).execute();
    return toUser(next);
  });
}

/** Delete a user with their sessions and tokens; false when there was none. */
export async function deleteUser(db: Db, name: string): Promise<boolean> {
  return transact(db, async (trx) => {
    const row = await getUserByName(trx, name);
    if (!row) return false;
    await keepAnAdmin(trx, row, undefined);
    await trx.deleteFrom('sessions').where('user', '=', row.id).execute();
    await trx.deleteFrom('api_tokens').where('user', '=', row.id).execute();
    await trx.deleteFrom('users').where('id', '=', row.id).execute();
    return true;
  });
}

/**
 * Refuse to take away the last enabled admin (demoted, disabled or deleted): the console would
 * have nobody left to manage users (POSTROOM_API_TOKEN and the CLI still could, but a slip in
 * the console should not need them).
 */
async function keepAnAdmin(trx: Q, row: UsersTable, next: { role: string; disabled: number } | undefined): Promise<void> {
  if (row.role !== 'admin' || row.disabled === 1) return;
  if (next && next.role === 'admin' && next.disabled === 0) return;
  const others = await trx
    .selectFrom('users')
    .select('id')
    .where('role', '=', 'admin')
    .where('disabled', '=', 0)
    .where('id', '!=', row.id)
    .executeTakeFirst();
  if (!others) throw mailError('CONFLICT', `'${row.name}' is the last enabled admin; make another admin first`);
}

let dummy: { log2N: number; hash: Promise<string> } | undefined;

/**
 * The user whose name and password these are, or undefined. An unknown name costs the same
 * scrypt work as a known one (a hash of the same cost is checked), and a disabled user is
 * refused only after the check: the response time tells nothing about which names exist.
 */
export async function checkCredentials(db: Q, name: string, password: string, log2N: number): Promise<User | undefined> {
  const row = USER_NAME.test(name) ? await getUserByName(db, name) : undefined;
  if (!dummy || dummy.log2N !== log2N) dummy = { log2N, hash: hashPassword('not a password anyone has', scryptCost(log2N)) };
  const ok = await verifyPassword(password, row?.password_hash ?? (await dummy.hash));
  if (!row || !ok || row.disabled === 1) return undefined;
  return toUser(row);
}
