import { mailError } from '../../core/errors.js';
import type { Db } from '../../store/db.js';
import type { GroupMembersTable } from '../../store/schema.js';
import { createObject, deleteObject, isUniqueViolation, requireObject, updateObject, type Q } from '../objects/store.js';

/**
 * Groups and their members. A group is an object (kind `group`: one id sequence with folders
 * and workflows, so `prefix+<id>@` and ACLs work for it too) plus its list address and
 * policies; members are rows under it.
 */

export const POSTING = ['members', 'anyone', 'moderated'] as const;
export type Posting = (typeof POSTING)[number];
export const REPLY_TO = ['group', 'sender'] as const;
export type ReplyTo = (typeof REPLY_TO)[number];

export interface Group {
  id: number;
  name: string;
  address: string;
  posting: Posting;
  replyTo: ReplyTo;
  createdAt: string;
  updatedAt: string;
}

export interface Member {
  email: string;
  name: string | null;
  delivery: boolean;
  bounces: number;
  suspended: boolean;
  lastBounceAt: string | null;
  createdAt: string;
}

/** Lower-cased address; INVALID_REQUEST unless it is LOCAL@DOMAIN with no '+' in LOCAL (VERP uses it). */
export function listAddress(address: string): string {
  const a = address.trim().toLowerCase();
  const m = /^([^@\s+<>"]+)@([a-z0-9.-]+)$/.exec(a);
  if (!m) throw mailError('INVALID_REQUEST', `address: '${address}' is not LOCAL@DOMAIN without '+' (bounces come back to LOCAL+bounces-…@DOMAIN)`);
  return a;
}

function memberOf(r: GroupMembersTable): Member {
  return {
    email: r.email,
    name: r.name,
    delivery: Number(r.delivery) === 1,
    bounces: Number(r.bounces),
    suspended: Number(r.suspended) === 1,
    lastBounceAt: r.last_bounce_at,
    createdAt: r.created_at,
  };
}

async function load(db: Q, id: number): Promise<Group | undefined> {
  const r = await db
    .selectFrom('groups')
    .innerJoin('objects', 'objects.id', 'groups.id')
    .select(['groups.id', 'objects.name', 'groups.address', 'groups.posting', 'groups.reply_to', 'objects.created_at', 'objects.updated_at'])
    .where('groups.id', '=', id)
    .executeTakeFirst();
  if (!r) return undefined;
  return { id: Number(r.id), name: r.name, address: r.address, posting: r.posting as Posting, replyTo: r.reply_to as ReplyTo, createdAt: r.created_at, updatedAt: r.updated_at };
}

/** A group by id, or undefined. */
export async function getGroup(db: Q, id: number): Promise<Group | undefined> {
  return Number.isSafeInteger(id) && id > 0 ? load(db, id) : undefined;
}

/** A group by id, or NOT_FOUND. */
export async function requireGroup(db: Q, id: number): Promise<Group> {
  const g = await getGroup(db, id);
  if (!g) throw mailError('NOT_FOUND', `No group ${id}`);
  return g;
}

/** The group whose list address this is (case-insensitive), or undefined. */
export async function groupByAddress(db: Q, address: string): Promise<Group | undefined> {
  const r = await db.selectFrom('groups').select('id').where('address', '=', address.toLowerCase()).executeTakeFirst();
  return r ? load(db, Number(r.id)) : undefined;
}

/** Groups by id ascending; `after` pages. */
export async function listGroups(db: Q, f: { after?: number; limit: number }): Promise<Group[]> {
  let q = db.selectFrom('groups').select('id').orderBy('id').limit(f.limit);
  if (f.after !== undefined) q = q.where('id', '>', f.after);
  const ids = await q.execute();
  return (await Promise.all(ids.map((r) => load(db, Number(r.id))))).filter((g): g is Group => !!g);
}

/** Create a group (an object of kind `group` and its row, in one transaction). */
export async function createGroup(db: Db, g: { name: string; address: string; posting: Posting; replyTo: ReplyTo }): Promise<Group> {
  const address = listAddress(g.address);
  try {
    return await db.kysely.transaction().execute(async (trx) => {
      const o = await createObject(trx, { kind: 'group', name: g.name });
      await trx.insertInto('groups').values({ id: o.id, address, posting: g.posting, reply_to: g.replyTo }).execute();
      return (await load(trx, o.id))!;
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw mailError('INVALID_REQUEST', `address: ${address} belongs to another group`);
    throw err;
  }
}

/** Change a group's name, address or policies. */
export async function updateGroup(db: Db, id: number, patch: { name?: string; address?: string; posting?: Posting; replyTo?: ReplyTo }): Promise<Group> {
  await requireGroup(db.kysely, id);
  const set: { address?: string; posting?: string; reply_to?: string } = {};
  if (patch.address !== undefined) set.address = listAddress(patch.address);
  if (patch.posting !== undefined) set.posting = patch.posting;
  if (patch.replyTo !== undefined) set.reply_to = patch.replyTo;
  try {
    await db.kysely.transaction().execute(async (trx) => {
      if (Object.keys(set).length) await trx.updateTable('groups').set(set).where('id', '=', id).execute();
      await updateObject(trx, id, { name: patch.name });
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw mailError('INVALID_REQUEST', `address: ${set.address} belongs to another group`);
    throw err;
  }
  return requireGroup(db.kysely, id);
}

/** Delete a group with its members and posts. */
export async function deleteGroup(db: Q, id: number): Promise<boolean> {
  await requireObject(db, id, 'group');
  // Posts are objects of their own (children of the group): the cascade on objects.parent takes them.
  return deleteObject(db, id);
}

/** The members of a group, by address. */
export async function listMembers(db: Q, group: number): Promise<Member[]> {
  const rows = await db.selectFrom('group_members').selectAll().where('group_id', '=', group).orderBy('email').execute();
  return rows.map(memberOf);
}

/** One member, or undefined. */
export async function getMember(db: Q, group: number, email: string): Promise<Member | undefined> {
  const r = await db.selectFrom('group_members').selectAll().where('group_id', '=', group).where('email', '=', email.toLowerCase()).executeTakeFirst();
  return r ? memberOf(r) : undefined;
}

/** Add a member or change one; `bounces: 0` also lifts a suspension. */
export async function putMember(db: Q, group: number, email: string, m: { name?: string | null; delivery?: boolean; bounces?: number }): Promise<Member> {
  const key = email.trim().toLowerCase();
  if (!/^[^@\s<>"]+@[^@\s<>"]+$/.test(key)) throw mailError('INVALID_REQUEST', `email: '${email}' is not an address`);
  const have = await getMember(db, group, key);
  if (!have) {
    await db
      .insertInto('group_members')
      .values({ group_id: group, email: key, name: m.name ?? null, delivery: m.delivery === false ? 0 : 1, bounces: 0, suspended: 0, last_bounce_at: null, created_at: new Date().toISOString() })
      .execute();
  } else {
    const set: Partial<GroupMembersTable> = {};
    if (m.name !== undefined) set.name = m.name;
    if (m.delivery !== undefined) set.delivery = m.delivery ? 1 : 0;
    if (m.bounces !== undefined) {
      set.bounces = m.bounces;
      set.suspended = 0;
    }
    if (Object.keys(set).length) await db.updateTable('group_members').set(set).where('group_id', '=', group).where('email', '=', key).execute();
  }
  return (await getMember(db, group, key))!;
}

/** Remove a member; false when there was none. */
export async function removeMember(db: Q, group: number, email: string): Promise<boolean> {
  const r = await db.deleteFrom('group_members').where('group_id', '=', group).where('email', '=', email.toLowerCase()).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/**
 * Count a bounce against a member; at `limit` bounces the member is suspended. One UPDATE, so
 * bounces arriving at once on several nodes are all counted. Undefined when not a member.
 */
export async function recordBounce(db: Q, group: number, email: string, limit: number): Promise<Member | undefined> {
  const key = email.toLowerCase();
  // The count and the suspension in the same statement: as two, a reader (the relay, the API)
  // could see the limit reached and the member not yet suspended, and send them a copy.
  await db
    .updateTable('group_members')
    .set((eb) => ({
      bounces: eb('bounces', '+', 1),
      suspended: eb.case().when(eb('bounces', '+', 1), '>=', limit).then(1).else(eb.ref('suspended')).end(),
      last_bounce_at: new Date().toISOString(),
    }))
    .where('group_id', '=', group)
    .where('email', '=', key)
    .execute();
  return getMember(db, group, key);
}

/** `-l LIST` / `?list=`: an address as it is, a numeric id as that group's address; 5.1.1 when there is no such group. */
export async function resolveList(db: Q, list: string): Promise<string> {
  if (list.includes('@')) return list;
  const g = /^\d{1,15}$/.test(list) ? await getGroup(db, Number(list)) : undefined;
  if (!g) throw mailError('UNKNOWN_RECIPIENT', `No such group here: ${list}`);
  return g.address;
}
