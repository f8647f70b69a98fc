import type { FastifyInstance, FastifyRequest } from 'fastify';
import { mailError } from '../core/errors.js';
import { safeEqual } from '../ingress/smtp-auth.js';

/** The token in `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 9110 §11.1). */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const m = /^bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header);
  return m?.[1];
}

/**
 * Default-deny: every request needs the token unless its route is declared public (config.public).
 * Unknown URLs are denied too, so probing without a token learns nothing about which routes exist.
 * Tokens are compared in constant time so the response time does not leak a matching prefix.
 */
export function installBearerAuth(app: FastifyInstance, token: string): void {
  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config as { public?: boolean } | undefined;
    if (config?.public) return;
    const given = bearerToken(request);
    if (given === undefined) throw mailError('UNAUTHORISED', 'Missing bearer token (Authorization: Bearer <token>)');
    if (!safeEqual(given, token)) throw mailError('UNAUTHORISED', 'Invalid API token');
  });
}
