import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HttpConfig } from '../config/schema.js';
import { mailError } from '../core/errors.js';
import { safeEqual } from '../core/passwords.js';
import { useToken, type TokenScope } from '../store/api-tokens.js';
import type { Db } from '../store/db.js';
import { touchSession, type Session } from '../store/sessions.js';
import { roleAtLeast, type Role, type User } from '../store/users.js';
import { clearSessionCookie, sessionCookie } from './session-cookie.js';

/**
 * Who is asking: POSTROOM_API_TOKEN (admin), a user's API token (their role, or viewer powers
 * when the token's scope is read), or a signed-in browser session (the user's role).
 */
export interface Principal {
  kind: 'admin-token' | 'token' | 'session';
  /** The user behind a token or session; none for POSTROOM_API_TOKEN. */
  user?: User;
  /** The powers this request has (a read-scope token of an admin: viewer). */
  role: Role;
  scope: TokenScope;
  /** kind session: the session (its CSRF token). */
  session?: Session;
  /** kind token: which token (for the audit log). */
  tokenId?: string;
}

/** Per-route settings the auth and audit hooks read (route `config`, set once per route). */
export interface AuthRouteConfig {
  /** No credentials needed (health checks, sign-in). */
  public?: boolean;
  /** The least role that may call the route; default: viewer for safe methods, admin otherwise. */
  role?: Role;
  /** Audit action recorded when a state-changing request succeeds; false: exempt (say why where it is set). */
  audit?: string | false;
  /** A page, not an API: without credentials a GET is redirected (303) here with ?next=, instead of 401. */
  loginRedirect?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on every non-public route; undefined on public ones. */
    principal?: Principal;
  }
}

/** Methods that change nothing (RFC 9110 §9.2.1); everything else is state-changing. */
export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PROPFIND']);

/** The role a route needs: what its config declares, else viewer to read and admin to change (safe by default). */
export function requiredRole(method: string, config: AuthRouteConfig | undefined): Role {
  return config?.role ?? (SAFE_METHODS.has(method) ? 'viewer' : 'admin');
}

/**
 * For a handler that decides by what it finds (someone else's token, a user's own row): FORBIDDEN
 * unless the request has at least `need`. The route's own `role` is checked before any handler.
 */
export function requireRole(request: FastifyRequest, need: Role): Principal {
  const p = request.principal;
  if (!p) throw mailError('UNAUTHORISED', 'Missing credentials');
  if (!roleAtLeast(p.role, need)) throw mailError('FORBIDDEN', `needs role ${need}; your role is ${p.role}`);
  return p;
}

/** The actor's name as the audit log records it. */
export function actorName(p: Principal): string {
  return p.user?.name ?? 'api-token';
}

/** The token in `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 9110 §11.1). */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const m = /^bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header);
  return m?.[1];
}

export interface AuthDeps {
  db: Db;
  /** POSTROOM_API_TOKEN / http.apiToken: admin powers. */
  token: string;
  config: HttpConfig;
}

/**
 * The principal of a request, or undefined with no credentials. Authorization takes precedence
 * over the cookie: a script with a token is never judged by a browser's session. A credential
 * given and wrong is UNAUTHORISED (never silently anonymous).
 */
export async function resolvePrincipal(request: FastifyRequest, reply: FastifyReply, deps: AuthDeps): Promise<Principal | undefined> {
  if (request.headers.authorization !== undefined) {
    const given = bearerToken(request);
    if (given === undefined) throw mailError('UNAUTHORISED', 'Missing bearer token (Authorization: Bearer <token>)');
    // Compared in constant time whatever else the token may be, so the time does not tell a prefix of it.
    if (safeEqual(given, deps.token)) return { kind: 'admin-token', role: 'admin', scope: 'write' };
    const found = await useToken(deps.db, given);
    if (!found) throw mailError('UNAUTHORISED', 'Invalid API token');
    const role: Role = found.token.scope === 'read' ? 'viewer' : found.user.role;
    return { kind: 'token', user: found.user, role, scope: found.token.scope, tokenId: found.token.id };
  }
  const cookie = sessionCookie(request);
  if (cookie === undefined) return undefined;
  const session = await touchSession(deps.db, cookie, deps.config.sessions);
  if (!session) {
    // Tell the browser to forget a cookie that no longer opens anything.
    clearSessionCookie(reply, request, deps.config);
    throw mailError('UNAUTHORISED', 'Session expired or signed out; sign in again');
  }
  return { kind: 'session', user: session.user, role: session.user.role, scope: 'write', session };
}

/** This site's origins: as the request reached us, and http.publicUrl's (behind a proxy). */
function ownOrigins(request: FastifyRequest, config: HttpConfig): string[] {
  const out = [`${request.protocol}://${request.host}`.toLowerCase()];
  if (config.publicUrl) out.push(new URL(config.publicUrl).origin.toLowerCase());
  return out;
}

/**
 * A state-changing request made with the ambient cookie must come from our own pages: the
 * browser's Sec-Fetch-Site and Origin, when it sends them, must say same-origin (a second
 * line behind the CSRF token and SameSite=Strict, for browsers that ignore either).
 */
export function checkSameOrigin(request: FastifyRequest, config: HttpConfig): void {
  const site = request.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin') {
    throw mailError('FORBIDDEN', `cross-site request refused (Sec-Fetch-Site: ${site.slice(0, 40)})`);
  }
  const origin = request.headers.origin;
  if (typeof origin === 'string' && !ownOrigins(request, config).includes(origin.toLowerCase())) {
    throw mailError('FORBIDDEN', `cross-site request refused (Origin ${origin.slice(0, 200)} is not this site)`);
  }
}

export const CSRF_HEADER = 'x-csrf-token';
export const CSRF_FIELD = '_csrf';
const CSRF_REFUSED = `CSRF token missing or wrong: send the session's csrfToken in the ${CSRF_HEADER} header (or the ${CSRF_FIELD} form field)`;

/**
 * The role check, and for cookie sessions the CSRF check, on every route: one hook, so no route
 * can forget it. Unknown URLs are denied too without credentials, so probing learns nothing
 * about which routes exist.
 */
export function installAuth(app: FastifyInstance, deps: AuthDeps): void {
  app.decorateRequest('principal', undefined);
  app.addHook('onRequest', async (request, reply) => {
    const config = request.routeOptions.config as AuthRouteConfig | undefined;
    if (config?.public) return;
    let principal: Principal | undefined;
    try {
      principal = await resolvePrincipal(request, reply, deps);
      if (!principal) throw mailError('UNAUTHORISED', 'Missing credentials: Authorization: Bearer <token>, or sign in (POST /api/v1/session)');
    } catch (err) {
      if (config?.loginRedirect && (request.method === 'GET' || request.method === 'HEAD')) {
        return reply.redirect(`${config.loginRedirect}?next=${encodeURIComponent(request.url)}`, 303);
      }
      throw err;
    }
    request.principal = principal;
    const need = requiredRole(request.method, config);
    if (!roleAtLeast(principal.role, need)) {
      const why = principal.kind === 'token' && principal.scope === 'read' ? 'this token has read scope' : `your role is ${principal.role}`;
      throw mailError('FORBIDDEN', `needs role ${need}; ${why}`);
    }
    if (principal.kind === 'session' && !SAFE_METHODS.has(request.method)) {
      checkSameOrigin(request, deps.config);
      const header = request.headers[CSRF_HEADER];
      // The header is checked now; a form's _csrf field only once the body is parsed (preValidation).
      if (header !== undefined && !safeEqual(String(header), principal.session!.csrfToken)) throw mailError('FORBIDDEN', CSRF_REFUSED);
    }
  });
  app.addHook('preValidation', async (request) => {
    const p = request.principal;
    if (p?.kind !== 'session' || SAFE_METHODS.has(request.method) || request.headers[CSRF_HEADER] !== undefined) return;
    const body = request.body as Record<string, unknown> | null | undefined;
    const field = body && typeof body === 'object' && typeof body[CSRF_FIELD] === 'string' ? (body[CSRF_FIELD] as string) : undefined;
    if (field === undefined || !safeEqual(field, p.session!.csrfToken)) throw mailError('FORBIDDEN', CSRF_REFUSED);
    // Checked: the route's own schema (strict objects) never sees it.
    delete body![CSRF_FIELD];
  });
}
