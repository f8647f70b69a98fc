import { mailError } from '../../core/errors.js';
import type { Db } from '../../store/db.js';
import type { GroupPostsTable } from '../../store/schema.js';
import { createObject, type Q } from '../objects/store.js';

/**
 * Posts of a group, threaded the way mail readers do (RFC 5322 §3.6.4): the parent is the post
 * whose Message-ID is In-Reply-To, else the nearest one named in References (last first); mail
 * from clients that send neither joins the latest thread with the same subject once Re:/Fwd:
 * and [tags] are taken off (the Subject fallback of Netscape/JWZ threading). A post that arrives
 * after replies naming it adopts them, so Message-ID links do not depend on arrival order.
 */

export const POST_STATUSES = ['held', 'approved', 'relayed', 'rejected'] as const;
export type PostStatus = (typeof POST_STATUSES)[number];

export interface Post {
  id: number;
  group: number;
  /** The kept message. */
  message: string;
  delivery: string;
  messageId: string | null;
  subject: string | null;
  author: string | null;
  thread: number;
  parent: number | null;
  status: PostStatus;
  postedAt: string;
  /** The bytes the post was made of, kept by the post itself (the message may be removed by retention); null only if its message was gone before migration 0025. */
  rawSha256: string | null;
}

function postOf(r: GroupPostsTable): Post {
  return {
    id: Number(r.id),
    group: Number(r.group_id),
    message: r.message,
    delivery: r.delivery,
    messageId: r.message_id,
    subject: r.subject,
    author: r.author,
    thread: Number(r.thread),
    parent: r.parent === null ? null : Number(r.parent),
    status: r.status as PostStatus,
    postedAt: r.posted_at,
    rawSha256: r.raw_sha256 ?? null,
  };
}

// Reply and forward markers in several languages, with an optional count (Re[2]:), and list tags.
const PREFIX = /^\s*(?:(?:re|fwd?|aw|sv|vs|antw|wg|tr|rif|r)\s*(?:\[\d+\]|\(\d+\))?\s*:|\[[^\]]*\])\s*/i;

/** A subject as threads compare it: prefixes off, whitespace collapsed, lower case; null when nothing is left. */
export function threadSubject(subject: string | null | undefined): string | null {
  let s = (subject ?? '').trim();
  for (let prev = ''; prev !== s; ) {
    prev = s;
    s = s.replace(PREFIX, '');
  }
  s = s.replace(/\s+/g, ' ').trim().toLowerCase();
  return s || null;
}

/** Message-IDs in a References / In-Reply-To value, in order. */
export function messageIds(value: string | null | undefined): string[] {
  return [...(value ?? '').matchAll(/<[^<>\s]+>/g)].map((m) => m[0]);
}

/** The post a delivery made, if it made one (a retried delivery must not post twice). */
export async function postByDelivery(db: Q, delivery: string): Promise<Post | undefined> {
  const r = await db.selectFrom('group_posts').selectAll().where('delivery', '=', delivery).executeTakeFirst();
  return r ? postOf(r) : undefined;
}

/** Message-IDs named per post at most: a long References chain adds nothing past its nearest ones. */
const MAX_REFS = 50;

/** The Message-IDs a post names, best parent first: In-Reply-To, then References nearest first. */
export function parentChoices(p: { inReplyTo: string[]; references: string[] }): string[] {
  return [...new Set([...p.inReplyTo, ...[...p.references].reverse()])].slice(0, MAX_REFS);
}

/**
 * Find the parent of a new post (see the module comment), never one of `below` (the replies it
 * is about to adopt, with theirs: a parent among them would make a cycle).
 */
async function findParent(db: Q, group: number, p: { refs: string[]; subject: string | null }, below: Set<number>) {
  for (const id of p.refs) {
    const hits = await db.selectFrom('group_posts').selectAll().where('group_id', '=', group).where('message_id', '=', id).orderBy('id').execute();
    const hit = hits.find((h) => !below.has(Number(h.id)));
    if (hit) return hit;
  }
  const ts = threadSubject(p.subject);
  if (!ts) return undefined;
  const same = await db
    .selectFrom('group_posts')
    .selectAll()
    .where('group_id', '=', group)
    .where('thread_subject', '=', ts)
    .orderBy('id', 'desc')
    .limit(below.size + 1)
    .execute();
  return same.find((h) => !below.has(Number(h.id)));
}

/**
 * Posts already kept that name `messageId` and would rather have it as parent than the one they
 * got: they arrived first (or at the same time), when it was not there yet. A post prefers the
 * Message-ID it names earliest (In-Reply-To, then References nearest first) over one named
 * later, and any named one over a subject match or none.
 */
async function repliesToAdopt(db: Q, group: number, messageId: string): Promise<number[]> {
  const named = await db
    .selectFrom('group_post_refs as r')
    .innerJoin('group_posts as c', 'c.id', 'r.post')
    .leftJoin('group_posts as p', 'p.id', 'c.parent')
    .select(['c.id', 'r.rank', 'p.message_id as parentMessageId'])
    .where('r.group_id', '=', group)
    .where('r.message_id', '=', messageId)
    .orderBy('c.id')
    .execute();
  const out: number[] = [];
  for (const n of named) {
    const current = n.parentMessageId
      ? await db.selectFrom('group_post_refs').select('rank').where('post', '=', n.id).where('message_id', '=', n.parentMessageId).executeTakeFirst()
      : undefined;
    if (Number(n.rank) < (current ? Number(current.rank) : Infinity)) out.push(Number(n.id));
  }
  return out;
}

/** These posts and every reply below them. */
async function withReplies(db: Q, roots: number[]): Promise<Set<number>> {
  const seen = new Set(roots);
  for (let level = roots; level.length; ) {
    const next: number[] = [];
    for (let i = 0; i < level.length; i += 500) {
      const rows = await db.selectFrom('group_posts').select('id').where('parent', 'in', level.slice(i, i + 500)).execute();
      for (const r of rows) {
        const id = Number(r.id);
        if (!seen.has(id)) next.push(id);
        seen.add(id);
      }
    }
    level = next;
  }
  return seen;
}

/**
 * Store a post (an object of kind `post` under the group) with its place in a thread.
 *
 * Posts to one group are made one at a time: on PostgreSQL the group's row is locked first
 * (under READ COMMITTED two replies arriving together would each miss the other, uncommitted);
 * SQLite has one writer. They may still be made in any order, so a post that arrives after
 * replies naming it adopts them, with the replies below them (JWZ threading's property that
 * the arrival order does not matter for Message-ID links).
 */
export async function createPost(
  db: Db,
  p: {
    group: number;
    message: string;
    delivery: string;
    messageId: string | null;
    inReplyTo: string[];
    references: string[];
    subject: string | null;
    author: string | null;
    status: PostStatus;
    postedAt: string;
  },
): Promise<Post> {
  return db.kysely.transaction().execute(async (trx) => {
    // NO KEY UPDATE: posts wait for each other, foreign-key checks (new members) do not.
    if (db.dialect === 'postgres') await trx.selectFrom('groups').select('id').where('id', '=', p.group).forNoKeyUpdate().execute();
    const refs = parentChoices(p);
    const adopt = p.messageId ? await repliesToAdopt(trx, p.group, p.messageId) : [];
    const below = await withReplies(trx, adopt);
    const parent = await findParent(trx, p.group, { refs, subject: p.subject }, below);
    const o = await createObject(trx, { kind: 'post', name: `post-${p.delivery}`, parent: p.group });
    // The post names the message's bytes itself, so retention removing the message leaves the
    // post readable and the orphan sweep leaves the blob (store/sweep.ts REFS).
    const raw = await trx.selectFrom('messages').select('raw_sha256').where('id', '=', p.message).executeTakeFirst();
    const row: GroupPostsTable = {
      id: o.id,
      group_id: p.group,
      message: p.message,
      delivery: p.delivery,
      message_id: p.messageId,
      subject: p.subject,
      thread_subject: threadSubject(p.subject),
      author: p.author,
      thread: parent ? Number(parent.thread) : o.id,
      parent: parent ? Number(parent.id) : null,
      status: p.status,
      posted_at: p.postedAt,
      raw_sha256: raw?.raw_sha256 ?? null,
    };
    await trx.insertInto('group_posts').values(row).execute();
    if (refs.length) {
      await trx
        .insertInto('group_post_refs')
        .values(refs.map((message_id, rank) => ({ post: o.id, rank, group_id: p.group, message_id })))
        .execute();
    }
    if (adopt.length) {
      for (let i = 0; i < adopt.length; i += 500) {
        await trx.updateTable('group_posts').set({ parent: o.id }).where('id', 'in', adopt.slice(i, i + 500)).execute();
      }
      // A thread's posts carry its number: the adopted and theirs join this post's thread.
      const moved = [...below];
      for (let i = 0; i < moved.length; i += 500) {
        await trx.updateTable('group_posts').set({ thread: row.thread }).where('id', 'in', moved.slice(i, i + 500)).execute();
      }
    }
    return postOf(row);
  });
}

/** Posts of a group by id (oldest first); `thread` keeps one thread. */
export async function listPosts(db: Q, group: number, f: { thread?: number; status?: PostStatus; after?: number; limit: number }): Promise<Post[]> {
  let q = db.selectFrom('group_posts').selectAll().where('group_id', '=', group).orderBy('id').limit(f.limit);
  if (f.thread !== undefined) q = q.where('thread', '=', f.thread);
  if (f.status) q = q.where('status', '=', f.status);
  if (f.after !== undefined) q = q.where('id', '>', f.after);
  return (await q.execute()).map(postOf);
}

/** One post of a group, or NOT_FOUND. */
export async function requirePost(db: Q, group: number, id: number): Promise<Post> {
  const r = await db.selectFrom('group_posts').selectAll().where('group_id', '=', group).where('id', '=', id).executeTakeFirst();
  if (!r) throw mailError('NOT_FOUND', `No post ${id} in group ${group}`);
  return postOf(r);
}

/** Move a post to another status. */
export async function setPostStatus(db: Q, id: number, status: PostStatus): Promise<void> {
  await db.updateTable('group_posts').set({ status }).where('id', '=', id).execute();
}

/** Members a post was already relayed to (their copy was accepted by the relay). */
export async function relayedTo(db: Q, post: number): Promise<Set<string>> {
  const rows = await db.selectFrom('group_relays').select('email').where('post', '=', post).where('status', '=', 'sent').execute();
  return new Set(rows.map((r) => r.email));
}

/** Record what the relay said for one member's copy. */
export async function recordRelay(db: Q, post: number, email: string, status: 'sent' | 'failed', response: string): Promise<void> {
  const at = new Date().toISOString();
  await db
    .insertInto('group_relays')
    .values({ post, email, status, response: response.slice(0, 500), at })
    .onConflict((oc) => oc.columns(['post', 'email']).doUpdateSet({ status, response: response.slice(0, 500), at }))
    .execute();
}

/**
 * The Message-ID a post's copies carry. A post that came without one gets ours, recorded as
 * the post's, before any copy leaves: otherwise each member's server would stamp its own, and a
 * reply to the copy (In-Reply-To naming that id) would find no post and start a thread apart.
 */
export async function ensurePostMessageId(db: Q, post: Post, groupAddress: string): Promise<string> {
  if (post.messageId) return post.messageId;
  const domain = groupAddress.slice(groupAddress.lastIndexOf('@') + 1) || 'postroom.invalid';
  const messageId = `<post.${post.id}.${post.group}@${domain}>`;
  await db.updateTable('group_posts').set({ message_id: messageId }).where('id', '=', post.id).where('message_id', 'is', null).execute();
  return messageId;
}
