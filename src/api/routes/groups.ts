import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import { listPosts, POST_STATUSES, requirePost, setPostStatus, type Post } from '../../domain/groups/posts.js';
import {
  createGroup,
  deleteGroup,
  getMember,
  listGroups,
  listMembers,
  POSTING,
  putMember,
  removeMember,
  REPLY_TO,
  requireGroup,
  updateGroup,
} from '../../domain/groups/store.js';
import type { Db } from '../../store/db.js';
import { getDelivery, retryDelivery } from '../../store/deliveries.js';
import { BYTES_CSP, contentDisposition } from '../content-headers.js';
import { defineRoute } from '../route.js';
import type { ApiDeps } from '../deps.js';
import { ObjectId, ObjectName, ObjectParams } from './object-views.js';

const GROUPS = '/api/v1/groups';

const Address = z.string().min(3).max(320);
const MemberInput = z.strictObject({
  name: z.string().max(200).nullable().optional(),
  delivery: z.boolean().optional().describe('false: the member stays (may post) but gets no copies'),
  bounces: z.literal(0).optional().describe('0 resets the bounce count and lifts a suspension'),
});
const GroupCreate = z.strictObject({
  name: ObjectName,
  address: Address.describe("the list address LOCAL@DOMAIN (no '+' in LOCAL)"),
  posting: z.enum(POSTING).default('members').describe('members: only members post (others 550 5.7.1); anyone; moderated: non-members held for approval'),
  replyTo: z.enum(REPLY_TO).default('group').describe('group: Reply-To is the list; sender: replies go to the author'),
  members: z.array(MemberInput.extend({ email: Address })).max(10_000).default([]),
});
const GroupPatch = z.strictObject({
  name: ObjectName.optional(),
  address: Address.optional(),
  posting: z.enum(POSTING).optional(),
  replyTo: z.enum(REPLY_TO).optional(),
});

const GroupView = z.object({
  id: z.number().int().describe('object id (one sequence with folders and workflows)'),
  name: z.string(),
  address: z.string(),
  posting: z.enum(POSTING),
  replyTo: z.enum(REPLY_TO),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const MemberView = z.object({
  email: z.string(),
  name: z.string().nullable(),
  delivery: z.boolean(),
  bounces: z.number().int().describe('bounces received at this member\'s VERP return path'),
  suspended: z.boolean().describe('over groups.bounceLimit: no copies until the count is reset'),
  lastBounceAt: z.string().nullable(),
  createdAt: z.string(),
});
const PostView = z.object({
  id: z.number().int(),
  group: z.number().int(),
  message: z.string().describe('the kept message (GET /api/v1/messages/{id}); retention may remove it, the post keeps its own copy (rawUrl)'),
  messageUrl: z.string(),
  rawSha256: z.string().nullable().describe('sha256 of the bytes the post was made of, kept by the post itself'),
  rawUrl: z.string().nullable().describe('the post as received (message/rfc822), readable after its message is removed'),
  delivery: z.string(),
  messageId: z.string().nullable(),
  subject: z.string().nullable(),
  author: z.string().nullable(),
  thread: z.number().int().describe('id of the first post of the thread'),
  parent: z.number().int().nullable(),
  status: z.enum(POST_STATUSES),
  postedAt: z.string().describe('arrival time, or the Date: header when delivered with -t message'),
});

const MemberParams = z.strictObject({ id: ObjectId, email: Address });
const PostParams = z.strictObject({ id: ObjectId, post: ObjectId });
const ListQuery = z.strictObject({ after: ObjectId.optional(), limit: z.coerce.number().int().min(1).max(500).default(100) });
const PostQuery = ListQuery.extend({ thread: ObjectId.optional().describe('only this thread'), status: z.enum(POST_STATUSES).optional() });

const postOf = (p: Post) => ({
  ...p,
  messageUrl: `/api/v1/messages/${p.message}`,
  rawUrl: p.rawSha256 ? `${GROUPS}/${p.group}/posts/${p.id}/raw` : null,
});
const page = <T extends { id: number }>(rows: T[], limit: number) => ({ items: rows.slice(0, limit), next: rows.length > limit ? rows[limit - 1].id : null });

/** Groups, their members and posts; approving a held post replays its delivery. */
export async function groupRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const db = deps.db.kysely;
  const tags = ['groups'];

  defineRoute(app, { method: 'GET', url: GROUPS, summary: 'List groups', tags, query: ListQuery, responses: { 200: { description: 'a page', schema: z.object({ items: z.array(GroupView), next: z.number().int().nullable() }) } } }, async ({ query }) =>
    page(await listGroups(db, { after: query.after, limit: query.limit + 1 }), query.limit),
  );

  defineRoute(
    app,
    { method: 'POST', url: GROUPS, summary: 'Create a group (with members)', tags, body: GroupCreate, responses: { 201: { description: 'created', schema: GroupView } } },
    async ({ body, reply }) => {
      const g = await createGroup(deps.db, body);
      for (const m of body.members) await putMember(db, g.id, m.email, m);
      return reply.code(201).send(g);
    },
  );

  defineRoute(app, { method: 'GET', url: `${GROUPS}/:id`, summary: 'One group', tags, params: ObjectParams, responses: { 200: { description: 'the group', schema: GroupView } } }, async ({ params }) =>
    requireGroup(db, params.id),
  );

  defineRoute(
    app,
    { method: 'PATCH', url: `${GROUPS}/:id`, summary: 'Change name, address or policies', tags, params: ObjectParams, body: GroupPatch, responses: { 200: { description: 'the group now', schema: GroupView } } },
    async ({ params, body }) => updateGroup(deps.db, params.id, body),
  );

  defineRoute(
    app,
    { method: 'DELETE', url: `${GROUPS}/:id`, summary: 'Delete a group with its members and posts', tags, params: ObjectParams, responses: { 204: { description: 'deleted' } } },
    async ({ params, reply }) => {
      await requireGroup(db, params.id);
      await deleteGroup(db, params.id);
      return reply.code(204).send();
    },
  );

  defineRoute(
    app,
    { method: 'GET', url: `${GROUPS}/:id/members`, summary: 'Members with delivery and bounce state', tags, params: ObjectParams, responses: { 200: { description: 'all members', schema: z.object({ items: z.array(MemberView) }) } } },
    async ({ params }) => {
      await requireGroup(db, params.id);
      return { items: await listMembers(db, params.id) };
    },
  );

  defineRoute(
    app,
    { method: 'PUT', url: `${GROUPS}/:id/members/:email`, summary: 'Add a member or change one', tags, params: MemberParams, body: MemberInput, responses: { 200: { description: 'the member', schema: MemberView } } },
    async ({ params, body }) => {
      await requireGroup(db, params.id);
      return putMember(db, params.id, params.email, body);
    },
  );

  defineRoute(
    app,
    { method: 'GET', url: `${GROUPS}/:id/members/:email`, summary: 'One member', tags, params: MemberParams, responses: { 200: { description: 'the member', schema: MemberView } } },
    async ({ params }) => {
      const m = await getMember(db, params.id, params.email);
      if (!m) throw mailError('NOT_FOUND', `No member <${params.email}> in group ${params.id}`);
      return m;
    },
  );

  defineRoute(
    app,
    { method: 'DELETE', url: `${GROUPS}/:id/members/:email`, summary: 'Remove a member', tags, params: MemberParams, responses: { 204: { description: 'removed' } } },
    async ({ params, reply }) => {
      if (!(await removeMember(db, params.id, params.email))) throw mailError('NOT_FOUND', `No member <${params.email}> in group ${params.id}`);
      return reply.code(204).send();
    },
  );

  defineRoute(
    app,
    { method: 'GET', url: `${GROUPS}/:id/posts`, summary: 'Posts, oldest first (the archive; List-Archive points here)', tags, params: ObjectParams, query: PostQuery, responses: { 200: { description: 'a page', schema: z.object({ items: z.array(PostView), next: z.number().int().nullable() }) } } },
    async ({ params, query }) => {
      await requireGroup(db, params.id);
      const rows = await listPosts(db, params.id, { thread: query.thread, status: query.status, after: query.after, limit: query.limit + 1 });
      const p = page(rows, query.limit);
      return { items: p.items.map(postOf), next: p.next };
    },
  );

  defineRoute(app, { method: 'GET', url: `${GROUPS}/:id/posts/:post`, summary: 'One post', tags, params: PostParams, responses: { 200: { description: 'the post', schema: PostView } } }, async ({ params }) =>
    postOf(await requirePost(db, params.id, params.post)),
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: `${GROUPS}/:id/posts/:post/raw`,
      summary: 'The post exactly as received (message/rfc822), from its own copy',
      description: 'The post keeps the bytes it was made of: this reads them whether or not its message is still kept (retention may have removed it).',
      tags,
      params: PostParams,
      responses: { 200: { description: 'the raw post', contentType: 'message/rfc822' } },
    },
    async ({ params, request, reply }) => {
      const p = await requirePost(db, params.id, params.post);
      if (!p.rawSha256) throw mailError('NOT_FOUND', `post ${p.id} keeps no copy of its bytes (its message was removed before posts kept one)`);
      const body = request.method === 'HEAD' ? Readable.from([]) : await deps.blobs.open(p.rawSha256);
      return reply
        .header('content-type', 'message/rfc822')
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', BYTES_CSP)
        .header('content-disposition', contentDisposition('attachment', `post-${p.id}.eml`))
        .send(body);
    },
  );

  defineRoute(
    app,
    {
      method: 'POST',
      url: `${GROUPS}/:id/posts/:post/approve`,
      summary: 'Approve a held post: its delivery runs again and relays it',
      tags,
      role: 'operator',
      audit: 'group-post.approve',
      params: PostParams,
      responses: { 200: { description: 'the post, approved (relayed shortly)', schema: PostView } },
    },
    async ({ params }) => {
      const p = await requirePost(db, params.id, params.post);
      if (p.status !== 'held') throw mailError('INVALID_REQUEST', `post ${p.id} is ${p.status}, not held`);
      await setPostStatus(db, p.id, 'approved');
      await untilSettled(deps.db, p.delivery);
      await retryDelivery(deps.db, p.delivery);
      deps.onDeliveryRetry?.(p.delivery);
      return postOf({ ...p, status: 'approved' });
    },
  );

  defineRoute(
    app,
    { method: 'POST', url: `${GROUPS}/:id/posts/:post/reject`, summary: 'Reject a held post (it is kept, never relayed)', tags, role: 'operator', audit: 'group-post.reject', params: PostParams, responses: { 200: { description: 'the post', schema: PostView } } },
    async ({ params }) => {
      const p = await requirePost(db, params.id, params.post);
      if (p.status !== 'held') throw mailError('INVALID_REQUEST', `post ${p.id} is ${p.status}, not held`);
      await setPostStatus(db, p.id, 'rejected');
      return postOf({ ...p, status: 'rejected' });
    },
  );
}

/**
 * Wait (bounded) until a delivery has no attempt running. A post is marked held from inside its
 * delivery attempt, which then records itself as failed: a replay asked for in between would only
 * make the running attempt due again, and the attempt would then fail for good.
 */
async function untilSettled(db: Db, id: string, maxMs = 15_000): Promise<void> {
  const end = Date.now() + maxMs;
  while (Date.now() < end) {
    const d = await getDelivery(db.kysely, id);
    const running = d?.status === 'pending' && d.leaseUntil !== null && Date.parse(d.leaseUntil) > Date.now();
    if (!running) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}
