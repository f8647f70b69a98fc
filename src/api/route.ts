import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { mailError, type MailError } from '../core/errors.js';
import type { Role } from '../store/users.js';
import { requiredRole, SAFE_METHODS, type AuthRouteConfig } from './auth.js';

type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One response of a route, as documented in OpenAPI. */
export interface ResponseSpec {
  description: string;
  /** JSON body schema (application/json), or a media type for bytes. */
  schema?: z.ZodType;
  contentType?: string;
  headers?: Record<string, string>;
}

/**
 * A route as data: the same zod schemas validate the request and produce the OpenAPI document,
 * so the documentation cannot drift from what the server accepts (wildduck's rule).
 */
export interface RouteSpec<P extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType> {
  method: HttpMethod;
  /** fastify syntax: /api/v1/messages/:id */
  url: string;
  summary: string;
  description?: string;
  tags?: string[];
  /** No credentials needed (health checks, sign-in). Everything else is denied without them. */
  public?: boolean;
  /** The least role that may call it; default viewer for GET, admin for anything else (auth.ts). */
  role?: Role;
  /**
   * The audit action a successful state-changing call records (e.g. `delivery.retry`); default:
   * the operationId. `false` exempts the route (say why next to it).
   */
  audit?: string | false;
  params?: P;
  query?: Q;
  /** Request body: a zod schema (JSON, validated before the handler runs), or bytes of a media type the handler reads as a stream. */
  body?: z.ZodType | { contentType: string; description: string };
  responses: Record<number, ResponseSpec>;
  /**
   * Other paths that answer the same way (the same params by name), e.g. the REST model paths
   * of the email processor service Postroom replaces, so its clients work unchanged. Each is
   * its own operation in the OpenAPI document; the audit records the main path's action.
   */
  aliases?: readonly string[];
}

/** What a handler receives: validated params and query, plus fastify's request and reply. */
export interface RouteInput<P, Q, B = unknown> {
  params: P;
  query: Q;
  /** The validated JSON body (a spec with a zod `body`), else what fastify parsed (a stream for raw media types). */
  body: B;
  request: FastifyRequest;
  reply: FastifyReply;
}

type Out<T> = T extends z.ZodType ? z.output<T> : Record<string, never>;

/** Parse request input with a zod schema; a mismatch is INVALID_REQUEST naming the field. */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown, where: string): z.output<T> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const at = (path: PropertyKey[]) => [where, ...path.map(String)].join('.');
  // Unknown parameters are errors, not ignored: `?form=` (a typo for from) must not list everything.
  const detail = r.error.issues
    .map((i) =>
      i.code === 'unrecognized_keys'
        ? i.keys.map((k) => `${at([...i.path, k])}: unknown parameter`).join('; ')
        : `${at(i.path)}: ${i.message}`,
    )
    .join('; ');
  throw mailError('INVALID_REQUEST', detail);
}

/**
 * A body of another media type than the route takes is 415 (RFC 9110 §15.5.16), before any
 * field of it is judged: fastify would otherwise hand a text/plain body to the JSON schema and
 * answer 400 as if a field were wrong. No Content-Type: no body, which the schema judges.
 */
export function wrongMediaType(request: FastifyRequest, body: RouteSpec['body']): MailError | undefined {
  const sent = request.headers['content-type'];
  if (!body || sent === undefined) return undefined;
  const type = sent.split(';')[0]!.trim().toLowerCase();
  const want = 'safeParse' in body ? 'application/json' : body.contentType;
  if (type !== want) return mailError('UNSUPPORTED_MEDIA_TYPE', `send the body as ${want}, not ${type || 'an empty Content-Type'}`);
  return undefined;
}

/** Register a route whose params and query are validated by its spec's zod schemas. */
export function defineRoute<P extends z.ZodType | undefined, Q extends z.ZodType | undefined, B extends RouteSpec['body'] = undefined>(
  app: FastifyInstance,
  spec: RouteSpec & { params?: P; query?: Q; body?: B },
  handler: (input: RouteInput<Out<P>, Out<Q>, B extends z.ZodType ? z.output<B> : unknown>) => Promise<unknown>,
): void {
  const audit = SAFE_METHODS.has(spec.method) ? false : (spec.audit ?? operationId(spec.method, spec.url));
  const { aliases = [], ...main } = spec;
  for (const url of [spec.url, ...aliases]) {
    const shown: RouteSpec = url === spec.url ? main : { ...main, url, summary: `${spec.summary} (the same as ${spec.method} ${spec.url})` };
    registerOne(app, shown, audit, handler as never);
  }
}

function registerOne(app: FastifyInstance, spec: RouteSpec, audit: string | false, handler: (input: RouteInput<unknown, unknown, unknown>) => Promise<unknown>): void {
  app.route({
    method: spec.method,
    url: spec.url,
    config: {
      public: spec.public ?? false,
      spec,
      role: requiredRole(spec.method, spec),
      audit,
    } satisfies AuthRouteConfig & { spec: RouteSpec },
    handler: async (request, reply) => {
      const params = spec.params ? parseInput(spec.params, request.params, 'params') : {};
      const query = spec.query ? parseInput(spec.query, request.query, 'query') : {};
      const wrong = wrongMediaType(request, spec.body);
      if (wrong) throw wrong;
      const body = spec.body && 'safeParse' in spec.body ? parseInput(spec.body, request.body, 'body') : request.body;
      return handler({ params, query, body, request, reply });
    },
  });
}

/**
 * A stable, unique name for each operation (client generators name their methods by it):
 * the method and the path after /api/v1, a parameter as `By<Name>`.
 * GET /api/v1/messages/:id/raw → getMessagesByIdRaw.
 */
export function operationId(method: string, url: string): string {
  const words = url
    .replace(/^\/api\/v1(?=\/|$)/, '')
    .split(/[/._-]+/)
    .filter(Boolean)
    .map((w) => (w.startsWith(':') ? `By${cap(w.slice(1))}` : w === '*' ? 'Path' : cap(w)));
  return method.toLowerCase() + words.join('');
}

const cap = (w: string) => w.charAt(0).toUpperCase() + w.slice(1);
