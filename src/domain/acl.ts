import { mailError } from '../core/errors.js';
import type { Q } from './objects/store.js';

/**
 * Who may do what to an object. Mail acts as a principal: unauthenticated SMTP, pipe and HTTP
 * intake as the built-in `network` principal, which holds no rights until granted (a folder
 * open to the internet is a decision, not a default); an SMTP AUTH user as itself. Rights are
 * letters: r read, w write, d delete, a administer. Delivering into a folder needs r and w,
 * starting a workflow needs r. The API's bearer token is the administrator and needs no entry.
 * Entries are per object; nothing is inherited from the parent.
 */

/** The principal of every unauthenticated intake. */
export const NETWORK = 'network';

export const PERMISSION_LETTERS = 'rwda';
export type Permission = 'r' | 'w' | 'd' | 'a';

export interface AclEntry {
  principal: string;
  permissions: string;
}

/** The principal mail acts as: the authenticated user, else `network`. */
export function principalOf(authUser: string | null | undefined): string {
  return authUser ? authUser : NETWORK;
}

/** Permissions in canonical order without repeats ('wr' → 'rw'); INVALID_REQUEST on an unknown letter. */
export function normalisePermissions(p: string): string {
  for (const c of p) {
    if (!PERMISSION_LETTERS.includes(c)) throw mailError('INVALID_REQUEST', `permission '${c}' unknown (use ${PERMISSION_LETTERS.split('').join(', ')})`);
  }
  return [...PERMISSION_LETTERS].filter((c) => p.includes(c)).join('');
}

/** The entries of an object, by principal. */
export async function listAcl(db: Q, object: number): Promise<AclEntry[]> {
  const rows = await db.selectFrom('acl').select(['principal', 'permissions']).where('object', '=', object).orderBy('principal').execute();
  return rows;
}

/** Set a principal's permissions on an object ('' removes the entry). Resolves with the stored letters. */
export async function grant(db: Q, object: number, principal: string, permissions: string): Promise<string> {
  const p = normalisePermissions(permissions);
  if (!p) {
    await db.deleteFrom('acl').where('object', '=', object).where('principal', '=', principal).execute();
    return '';
  }
  await db
    .insertInto('acl')
    .values({ object, principal, permissions: p })
    .onConflict((oc) => oc.columns(['object', 'principal']).doUpdateSet({ permissions: p }))
    .execute();
  return p;
}

/** Whether `principal` holds every permission in `need` on the object. */
export async function hasPermissions(db: Q, object: number, principal: string, need: string): Promise<boolean> {
  const row = await db
    .selectFrom('acl')
    .select('permissions')
    .where('object', '=', object)
    .where('principal', '=', principal)
    .executeTakeFirst();
  const have = row?.permissions ?? '';
  return [...need].every((c) => have.includes(c));
}

/** Throw 550 5.7.1 unless `principal` holds `need` on the object; `what` names it in the reply. */
export async function requirePermissions(db: Q, object: number, principal: string, need: string, what: string): Promise<void> {
  if (await hasPermissions(db, object, principal, need)) return;
  const who = principal === NETWORK ? 'unauthenticated senders (principal network)' : `user ${principal}`;
  throw mailError('NOT_AUTHORISED', `Not authorised: ${who} may not ${what} (needs '${need}')`);
}
