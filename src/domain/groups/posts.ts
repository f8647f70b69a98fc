import { mailError } from '../../core/errors.js';
import type { Db } from '../../store/db.js';
import type { GroupPostsTable } from '../../store/schema.js';
import { createObject, type Q } from '../objects/store.js';

/**
 * Posts of a group, threaded the way mail readers do (RFC 5322 §3.6.4): the parent is the post
 * whose Message-ID is In-Reply-To, else the nearest one named in References (last first); mail
 * from clients that send neither joins the latest thread with the same subject once Re:/Fwd:
 * and [tags] are taken off (the Subject fallback of Netscape/JWZ threading).
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

async function byMessageId(db: Q, group: number, id: string): Promise<GroupPostsTable | undefined> {
  return db.selectFrom('group_posts').selectAll().where('group_id', '=', group).where('message_id', '=', id).orderBy('id').executeTakeFirst();
}

/** The post a delivery made, if it made one (a retried delivery must not post twice). */
export async function postByDelivery(db: Q, delivery: string): Promise<Post | undefined> {
  const r = await db.selectFrom('group_posts').selectAll().where('delivery', '=', delivery).executeTakeFirst();
  return r ? postOf(r) : undefined;
}

/** Find the parent of a new post (see the module comment). */
async function findParent(db: Q, group: number, p: { inReplyTo: string[]; references: string[]; subject: string | null }) {
  for (const id of [...p.inReplyTo, ...[...p.references].reverse()]) {
    const hit = await byMessageId(db, group, id);
    if (hit) return hit;
  }
  const ts = threadSubject(p.subject);
  if (!ts) return undefined;
  return db.selectFrom('group_posts').selectAll().where('group_id', '=', group).where('thread_subject', '=', ts).orderBy('id', 'desc').executeTakeFirst();
}

/** Store a post (an object of kind `post` under the group) with its place in a thread. */
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
    const parent = await findParent(trx, p.group, p);
    const o = await createObject(trx, { kind: 'post', name: `post-${p.delivery}`, parent: p.group });
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
    };
    await trx.insertInto('group_posts').values(row).execute();
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
