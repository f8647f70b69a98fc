import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { asMailError, mailError, MailError, toProblem } from '../core/errors.js';
import type { Logger } from '../telemetry/log.js';
import { wrongMediaType, type RouteSpec } from './route.js';

/** RFC 9457 §3: the media type of a problem document. */
export const PROBLEM_TYPE = 'application/problem+json';

/**
 * Errors fastify raises itself (bad JSON, unsupported media type, body too large, validation)
 * as our taxonomy: a client's mistake is INVALID_REQUEST, never a 5xx.
 */
function fromFastify(err: FastifyError): MailError | undefined {
  if (err instanceof MailError) return undefined;
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return mailError('TOO_LARGE', err.message, { cause: err });
  if (err.statusCode === 415) return mailError('UNSUPPORTED_MEDIA_TYPE', err.message, { cause: err });
  if (err.validation || (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500)) {
    return mailError('INVALID_REQUEST', err.message, { cause: err });
  }
  return undefined;
}

/** Send an error as problem JSON with the status its code maps to. */
export function sendProblem(reply: FastifyReply, err: unknown, instance?: string): FastifyReply {
  const problem = toProblem(err, instance);
  if (problem.code === 'UNAUTHORISED') {
    // RFC 6750 §3: a 401 names the scheme the client should use.
    reply.header('www-authenticate', 'Bearer realm="postroom"');
  }
  // RFC 6585 §4, RFC 9110 §10.2.3: when to come back.
  const retryAfter = asMailError(err).retryAfter;
  if (retryAfter !== undefined && problem.status === 429) reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfter))));
  // A problem must never be cached in place of the resource (RFC 9111 §3).
  reply.header('cache-control', 'no-store');
  // A Buffer, so fastify adds no charset parameter: JSON is UTF-8 by definition (RFC 8259 §8.1).
  return reply.code(problem.status as number).type(PROBLEM_TYPE).send(Buffer.from(JSON.stringify(problem)));
}

/**
 * The one error path for the whole API: every thrown error and every unknown URL becomes
 * problem JSON with a stable code. Handlers throw MailErrors; none writes its own error reply.
 */
export function installProblemHandlers(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    // A body fastify could not parse (JSON sent to the message/rfc822 intake) is, first of all,
    // of a media type the route does not take: 415 as when it parses, not 400.
    const spec = (request.routeOptions?.config as { spec?: RouteSpec } | undefined)?.spec;
    const e = (err.code?.startsWith('FST_ERR_CTP_') && err.code !== 'FST_ERR_CTP_BODY_TOO_LARGE' ? wrongMediaType(request, spec?.body) : undefined) ?? fromFastify(err) ?? asMailError(err);
    const problem = toProblem(e);
    if ((problem.status as number) >= 500) {
      log.error({ msg: 'api request failed', method: request.method, url: request.url, code: e.code, err: err?.message ?? String(err) });
    }
    // Headers already on the wire (a stream broke midway): all we can do is cut the connection,
    // which fastify does; a truncated body is better than a body that looks complete.
    if (reply.sent || reply.raw.headersSent) return;
    return sendProblem(reply, e, request.url);
  });
  app.setNotFoundHandler((request, reply) => sendProblem(reply, mailError('NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0]}`), request.url));
}
