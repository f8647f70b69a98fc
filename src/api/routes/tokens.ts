import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import { addToken, getToken, listTokens, revokeToken, TOKEN_PREFIX } from '../../store/api-tokens.js';
import { getUserByName, toUser } from '../../store/users.js';
import { defineRoute } from '../route.js';
import type { ApiDeps } from '../deps.js';

export const TOKENS = '/api/v1/tokens';

const TokenView = z.object({
  id: z.string(),
  user: z.string(),
  name: z.string(),
  scope: z.enum(['read', 'write']).describe('read: viewer powers whatever the user\'s role; write: the user\'s role'),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable().describe('to the minute'),
  revokedAt: z.string().nullable(),
});

const TokenCreate = z.strictObject({
  name: z.string().min(1).max(100).describe('what it is for, e.g. "backup script"'),
  scope: z.enum(['read', 'write']).default('read'),
  user: z.string().min(1).max(64).optional().describe('admin only: make it for this user (POSTROOM_API_TOKEN must name one)'),
});

const TokenParams = z.strictObject({ id: z.string().min(1).max(64) });

/** Per-user API tokens: list (own; an admin sees all), create (value shown once), revoke. */
export async function tokenRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { db } = deps;
  const tags = ['users'];

  defineRoute(
    app,
    { method: 'GET', url: TOKENS, summary: 'API tokens: your own; an admin sees everyone\'s', tags, responses: { 200: { description: 'newest first (values are never shown again)', schema: z.object({ items: z.array(TokenView) }) } } },
    async ({ request }) => {
      const p = request.principal!;
      return { items: await listTokens(db.kysely, p.role === 'admin' ? undefined : p.user!.id) };
    },
  );

  defineRoute(
    app,
    {
      method: 'POST',
      url: TOKENS,
      summary: `Make an API token (${TOKEN_PREFIX}…): its value is in this answer only, kept as sha256`,
      description: 'From a signed-in session (or with admin powers): a token cannot make tokens, so a leaked read token cannot become a write token.',
      tags,
      role: 'viewer',
      audit: 'token.create',
      body: TokenCreate,
      responses: { 201: { description: 'the token, with its value', schema: TokenView.extend({ token: z.string().describe('send as Authorization: Bearer; shown once') }) } },
    },
    async ({ body, request, reply }) => {
      const p = request.principal!;
      if (p.kind === 'token' && p.role !== 'admin') throw mailError('FORBIDDEN', 'tokens are made from a signed-in session, not with another token');
      let user = p.user;
      if (body.user !== undefined && body.user !== user?.name) {
        if (p.role !== 'admin') throw mailError('FORBIDDEN', 'only an admin makes tokens for another user');
        const row = await getUserByName(db.kysely, body.user);
        if (!row) throw mailError('NOT_FOUND', `no user '${body.user}'`);
        user = toUser(row);
      }
      if (!user) throw mailError('INVALID_REQUEST', 'body.user: POSTROOM_API_TOKEN has no user of its own; name the user the token is for');
      const { token, info } = await addToken(db, user, body);
      request.auditNote = { object: `token:${info.id}`, detail: { user: user.name, name: info.name, scope: info.scope } };
      reply.header('cache-control', 'no-store');
      return reply.code(201).send({ ...info, token });
    },
  );

  defineRoute(
    app,
    { method: 'DELETE', url: `${TOKENS}/:id`, summary: 'Revoke a token (your own; an admin any)', tags, role: 'viewer', audit: 'token.revoke', params: TokenParams, responses: { 204: { description: 'revoked (it stays listed with revokedAt)' } } },
    async ({ params, request, reply }) => {
      const p = request.principal!;
      const t = await getToken(db.kysely, params.id);
      // Someone else's token is "not found" to a non-admin: ids of others' tokens are not confirmed.
      if (!t || (p.role !== 'admin' && t.user !== p.user?.name)) throw mailError('NOT_FOUND', `no token ${params.id}`);
      await revokeToken(db, t.id);
      request.auditNote = { object: `token:${t.id}`, detail: { user: t.user, name: t.name } };
      return reply.code(204).send();
    },
  );
}
