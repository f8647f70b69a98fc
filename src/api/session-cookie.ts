import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HttpConfig } from '../config/schema.js';

/** The cookie that carries a console session's secret. */
export const SESSION_COOKIE = 'postroom_session';

/** The value of our session cookie in the request's Cookie header (RFC 6265 §5.4), if any. */
export function sessionCookie(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    return value || undefined;
  }
  return undefined;
}

/**
 * Secure when the request came over TLS, or when the public URL is https:// (TLS ends at a
 * proxy in front of us): the browser then never sends the cookie in cleartext.
 */
function secure(request: FastifyRequest, config: HttpConfig): boolean {
  return request.protocol === 'https' || !!config.publicUrl?.startsWith('https:');
}

/**
 * HttpOnly: page scripts (an XSS) cannot read it. SameSite=Strict: no other site's page makes
 * the browser send it (RFC 6265bis §8.8). Path=/: the console and the API share it. Max-Age:
 * the session's absolute end, after which the browser forgets it too.
 */
function attributes(request: FastifyRequest, config: HttpConfig, maxAgeSeconds: number): string {
  return `Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure(request, config) ? '; Secure' : ''}`;
}

export function setSessionCookie(reply: FastifyReply, request: FastifyRequest, config: HttpConfig, token: string): void {
  reply.header('set-cookie', `${SESSION_COOKIE}=${token}; ${attributes(request, config, Math.floor(config.sessions.maxAge / 1000))}`);
}

export function clearSessionCookie(reply: FastifyReply, request: FastifyRequest, config: HttpConfig): void {
  reply.header('set-cookie', `${SESSION_COOKIE}=; ${attributes(request, config, 0)}`);
}
