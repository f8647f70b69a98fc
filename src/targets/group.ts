import { z } from 'zod';
import type { DeliveryContext, ParsedMessage, Receipt, Target } from '../core/delivery.js';
import { mailError, type MailError } from '../core/errors.js';
import { bounceAddress, classifyRecipient } from '../domain/groups/addresses.js';
import type { GroupsConfig } from '../domain/groups/config.js';
import { createPost, ensurePostMessageId, messageIds, postByDelivery, recordRelay, relayedTo, setPostStatus, type Post } from '../domain/groups/posts.js';
import { listHeaders, listId, relayCopy } from '../domain/groups/relay-message.js';
import { getMember, groupByAddress, listMembers, putMember, recordBounce, type Group } from '../domain/groups/store.js';
import type { Db } from '../store/db.js';
import { smtpGroupRelay, type GroupRelay } from '../outbound/group-relay.js';
import { unbound } from './object-deps.js';

export const groupParams = z
  .strictObject({})
  .describe("post to the discussion group whose address is the recipient (and take its VERP bounces and +unsubscribe requests)");

export type GroupParams = z.output<typeof groupParams>;

export interface GroupTargetDeps {
  db: Db;
  config: GroupsConfig;
  /** Base URL of the API, for List-Archive. */
  publicUrl?: string;
  /** Builds the outbound relay (tests pass their own); default: groups.relay over SMTP. */
  relay?: () => GroupRelay;
}

/** The group a recipient names, or 550 5.1.1. */
async function resolve(db: Db, rcpt: string): Promise<{ group: Group; r: ReturnType<typeof classifyRecipient> }> {
  const r = classifyRecipient(rcpt);
  const group = await groupByAddress(db.kysely, r.list);
  if (!group) throw mailError('UNKNOWN_RECIPIENT', `No such group here: <${rcpt}>`);
  return { group, r };
}

/**
 * Who a post is from, for the membership check: the envelope sender, or with the null sender
 * <> the From: address (GroupServer's rule: an MTA piping mail to smtp2gs without its envelope
 * sender still posts for the member who wrote it). Empty when neither is known.
 */
function poster(mailFrom: string | undefined, from: string | null | undefined): string {
  return (mailFrom || from || '').trim().toLowerCase();
}

/** 550 5.7.1 when the group takes posts from members only and the sender is not one. */
async function mayPost(db: Db, group: Group, sender: string): Promise<{ member: boolean }> {
  const member = !!sender && !!(await getMember(db.kysely, group.id, sender));
  if (group.posting === 'members' && !member) {
    throw mailError('NOT_AUTHORISED', `Only members may post to <${group.address}>; <${sender || ''}> is not one`);
  }
  return { member };
}

const header = (msg: ParsedMessage, name: string) => msg.headers.find(([n]) => n.toLowerCase() === name)?.[1];

/** The address of the From: header ('Ann <ann@x>' → 'ann@x'), or undefined. */
function fromAddress(msg: ParsedMessage): string | undefined {
  const v = header(msg, 'from');
  if (!v) return undefined;
  return (/<([^<>\s]+)>/.exec(v)?.[1] ?? v.split(',')[0]).trim() || undefined;
}

/**
 * The `group` target. At RCPT time: 5.1.1 for an unknown group, 5.7.1 for a non-member under a
 * `members` policy (bounce and unsubscribe addresses take mail from anyone). After DATA: a
 * bounce at LOCAL+bounces-USER=HOST@ counts against that member (suspended at the limit); mail
 * to LOCAL+unsubscribe@ turns the sender's delivery off; a post is stored and threaded, then
 * relayed to every member with delivery on, one SMTP transaction each with the member's own
 * return path. A `moderated` group holds posts from non-members until approved through the
 * API (which replays this delivery). Members already sent a copy are skipped on a retry.
 */
export function createGroupTarget(deps?: GroupTargetDeps): Target<GroupParams> {
  return {
    kind: 'group',
    params: groupParams,
    // dev@ and dev+tag@ are one post to one group; dev@ and ops@ are a post to each.
    destination: (rcpt) => JSON.stringify(classifyRecipient(rcpt)),
    async check(rcpt, _p, ctx) {
      if (!deps) throw unbound('group');
      const { group, r } = await resolve(deps.db, rcpt);
      if (r.kind !== 'post') return;
      const sender = poster(ctx.mailFrom, ctx.headerFrom);
      // <> over SMTP: From: is not known yet; the delivery checks it (below), nothing is relayed before.
      if (!sender) return;
      await mayPost(deps.db, group, sender);
    },
    async deliver(msg, _p, ctx) {
      if (!deps) throw unbound('group');
      const { db } = deps;
      const { group, r } = await resolve(db, ctx.recipients[0] ?? '');
      const sender = poster(msg.message.mailFrom, fromAddress(msg));
      if (r.kind === 'bounce') {
        const m = await recordBounce(db.kysely, group.id, r.member, deps.config.bounceLimit);
        if (!m) return { summary: `bounce for <${r.member}>, not a member of group ${group.id}: ignored` };
        return { summary: `bounce ${m.bounces} for member <${m.email}> of group ${group.id}${m.suspended ? ': suspended' : ''}`, member: m.email, bounces: m.bounces };
      }
      if (r.kind === 'unsubscribe') {
        if (!sender || !(await getMember(db.kysely, group.id, sender))) return { summary: `unsubscribe from <${sender}>, not a member: ignored` };
        await putMember(db.kysely, group.id, sender, { delivery: false });
        return { summary: `delivery off for <${sender}> in group ${group.id}` };
      }
      // RFC 2919: our own List-Id coming back is a loop (a member's auto-forward to the list).
      if ((header(msg, 'list-id') ?? '').includes(`<${listId(group)}>`)) {
        throw mailError('MAIL_LOOP', `Mail loop: this message was already relayed by <${group.address}>`);
      }
      const post = (await postByDelivery(db.kysely, ctx.deliveryId)) ?? (await newPost(db, group, msg, ctx, await mayPost(db, group, sender)));
      if (post.status === 'held') return { summary: `post ${post.id} held for moderation in group ${group.id}`, post: post.id };
      if (post.status === 'rejected' || post.status === 'relayed') return { summary: `post ${post.id} ${post.status}`, post: post.id };
      return relay(deps, group, post, msg, ctx);
    },
  };
}

async function newPost(db: Db, group: Group, msg: ParsedMessage, ctx: DeliveryContext, who: { member: boolean }): Promise<Post> {
  const row = await db.kysely.selectFrom('messages').select('post_time').where('id', '=', msg.message.id).executeTakeFirst();
  return createPost(db, {
    group: group.id,
    message: msg.message.id,
    delivery: ctx.deliveryId,
    messageId: msg.message.messageId,
    inReplyTo: messageIds(header(msg, 'in-reply-to')),
    references: messageIds(header(msg, 'references')),
    subject: msg.message.subject,
    author: msg.message.from,
    status: group.posting === 'moderated' && !who.member ? 'held' : 'approved',
    postedAt: row?.post_time ?? msg.message.receivedAt,
  });
}

/** Send the post to each member still owed a copy; a 5xx for a member counts as a bounce. */
async function relay(deps: GroupTargetDeps, group: Group, post: Post, msg: ParsedMessage, ctx: DeliveryContext): Promise<Receipt> {
  const { db } = deps;
  if (!deps.relay && !deps.config.relay) throw mailError('CONFIG', 'groups.relay is not configured: posts cannot be relayed to members');
  const members = (await listMembers(db.kysely, group.id)).filter((m) => m.delivery && !m.suspended);
  const done = await relayedTo(db.kysely, post.id);
  const archive = deps.publicUrl ? `${deps.publicUrl.replace(/\/+$/, '')}/api/v1/groups/${group.id}/posts?thread=${post.thread}` : undefined;
  const list = listHeaders(group, archive);
  // The kept message has no Message-ID (none, or one we could not read): its copies carry the
  // post's own (the same on a retry), and a malformed field gives way to it (one per message, RFC 5322 §3.6).
  const own = msg.message.messageId ? undefined : await ensurePostMessageId(db.kysely, post, group.address);
  const add = own ? `${list.add}Message-ID: ${own}\r\n` : list.add;
  const drop = own ? new Set([...list.drop, 'message-id']) : list.drop;
  const sender = deps.relay ? deps.relay() : smtpGroupRelay(deps.config.relay!);
  let sent = 0;
  let deferred: MailError | undefined;
  const refused: string[] = [];
  try {
    for (const m of members) {
      if (done.has(m.email)) continue;
      ctx.signal.throwIfAborted();
      try {
        const raw = relayCopy(await msg.openRawWithTrace(), add, drop);
        const reply = await sender.send({ from: bounceAddress(group.address, m.email), to: m.email }, raw, ctx.signal);
        await recordRelay(db.kysely, post.id, m.email, 'sent', reply);
        sent++;
      } catch (err) {
        const e = err as MailError;
        if (e.transient !== false) {
          deferred ??= e;
          continue;
        }
        refused.push(m.email);
        await recordRelay(db.kysely, post.id, m.email, 'failed', e.message);
        await recordBounce(db.kysely, group.id, m.email, deps.config.bounceLimit);
      }
    }
  } finally {
    sender.close();
  }
  // Some copies could not go out yet: retry the delivery; those sent are skipped next time.
  if (deferred) throw deferred;
  await setPostStatus(db.kysely, post.id, 'relayed');
  return {
    summary: `post ${post.id} (thread ${post.thread}) relayed to ${sent + done.size} member${sent + done.size === 1 ? '' : 's'} of group ${group.id}${refused.length ? `; refused for ${refused.join(', ')}` : ''}`.slice(0, 300),
    post: post.id,
    thread: post.thread,
  };
}

/** The unbound `group` target of the registry (config validation reads its params). */
export const groupTarget = createGroupTarget();
