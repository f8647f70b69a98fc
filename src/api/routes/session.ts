import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import { createSession, endSession } from '../../store/sessions.js';
import { checkCredentials, ROLES } from '../../store/users.js';
import { checkSameOrigin } from '../auth.js';
import { defineRoute } from '../route.js';
import { clearSessionCookie, sessionCookie, setSessionCookie } from '../session-cookie.js';
import type { ApiDeps } from '../deps.js';
import { SignInLimit } from '../sign-in-limit.js';

export const SESSION = '/api/v1/session';

const SignIn = z.strictObject({
  name: z.string().min(1).max(64),
  password: z.string().min(1).max(1024),
});

const SessionView = z.object({
  kind: z.enum(['admin-token', 'token', 'session']).describe('how this request is authenticated'),
  user: z.string().nullable().describe('the user name; null for POSTROOM_API_TOKEN'),
  role: z.enum(ROLES).describe('the powers of this request (a read-scope token: viewer)'),
  scope: z.enum(['read', 'write']),
  csrfToken: z.string().nullable().describe('send as x-csrf-token with every state-changing request of this session; null without a session'),
  expiresAt: z.string().nullable().describe('the session\'s absolute end; it ends earlier after http.sessions.idleTimeout without a request'),
});

/** POST/GET/DELETE /api/v1/session: sign in (sets the postroom_session cookie), who am I, sign out. */
export async function sessionRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { config, db } = deps;
  const limit = new SignInLimit(config.signIn.attemptsPerMinute);

  defineRoute(
    app,
    {
      method: 'POST',
      url: SESSION,
      summary: 'Sign in: sets the postroom_session cookie (HttpOnly, SameSite=Strict, Secure over TLS) and returns the CSRF token',
      description:
        `Failed sign-ins are limited to http.signIn.attemptsPerMinute per client IP and per user name (then 429 with Retry-After). ` +
        'An unknown name, a wrong password and a disabled user get the same answer in the same time.',
      tags: ['sign-in'],
      public: true,
      audit: 'session.create',
      body: SignIn,
      responses: {
        200: { description: 'signed in', schema: SessionView, headers: { 'set-cookie': 'postroom_session=…; Path=/; HttpOnly; SameSite=Strict; Max-Age=…[; Secure]' } },
        401: { description: 'wrong user name or password (code UNAUTHORISED)' },
        403: { description: 'a cross-site sign-in (Origin or Sec-Fetch-Site of another site; code FORBIDDEN)' },
        429: { description: 'too many failed sign-ins (code TOO_MANY_REQUESTS); Retry-After says when to try again' },
      },
    },
    async ({ body, request, reply }) => {
      // Login CSRF: another site must not sign a browser in to an account of its choosing.
      checkSameOrigin(request, config);
      const keys = [`ip:${request.ip}`, `user:${body.name.toLowerCase()}`];
      const wait = Math.max(...keys.map((k) => limit.retryAfter(k)));
      if (wait > 0) throw mailError('TOO_MANY_REQUESTS', `Too many failed sign-ins; try again in ${wait} s`, { retryAfter: wait });
      // Counted before the (slow) check, so parallel tries are counted too; taken back on success.
      for (const k of keys) limit.fail(k);
      const user = await checkCredentials(db.kysely, body.name, body.password, config.signIn.scryptCost);
      if (!user) {
        deps.log.info({ msg: 'sign-in refused', user: body.name.slice(0, 64), ip: request.ip });
        throw mailError('UNAUTHORISED', 'Wrong user name or password');
      }
      limit.forgive(keys[0]!);
      limit.succeed(keys[1]!);
      const { token, session } = await createSession(db, user, config.sessions);
      setSessionCookie(reply, request, config, token);
      request.auditNote = { actor: user.name, object: `user:${user.name}` };
      reply.header('cache-control', 'no-store');
      return { kind: 'session' as const, user: user.name, role: user.role, scope: 'write' as const, csrfToken: session.csrfToken, expiresAt: session.expiresAt };
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: SESSION,
      summary: 'Who is asking: user, role, and (with a session cookie) the CSRF token',
      tags: ['sign-in'],
      responses: { 200: { description: 'the caller', schema: SessionView } },
    },
    async ({ request, reply }) => {
      const p = request.principal!;
      reply.header('cache-control', 'no-store');
      return { kind: p.kind, user: p.user?.name ?? null, role: p.role, scope: p.scope, csrfToken: p.session?.csrfToken ?? null, expiresAt: p.session?.expiresAt ?? null };
    },
  );

  defineRoute(
    app,
    {
      method: 'DELETE',
      url: SESSION,
      summary: 'Sign out: the session ends and the cookie is cleared (with a bearer token: nothing to do)',
      tags: ['sign-in'],
      role: 'viewer',
      audit: 'session.delete',
      responses: { 204: { description: 'signed out' } },
    },
    async ({ request, reply }) => {
      const token = sessionCookie(request);
      if (request.principal?.kind === 'session' && token) {
        await endSession(db, token);
        clearSessionCookie(reply, request, config);
      }
      return reply.code(204).send();
    },
  );
}
