import { z } from 'zod';
import { operationId, type ResponseSpec, type RouteSpec } from './route.js';
import { Problem } from './schemas.js';

type Json = Record<string, unknown>;

/** JSON Schema 2020-12 (which OpenAPI 3.1 uses as is) for a zod schema, without `$schema`. */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Json {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as Json;
  return rest;
}


/** `:id` → `{id}`. */
function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query'): Json[] {
  if (!schema || !(schema instanceof z.ZodObject)) return [];
  return Object.entries(schema.shape as Record<string, z.ZodType>).map(([name, field]) => {
    const s = jsonSchema(field, 'input');
    const { description, ...fieldSchema } = s;
    return {
      name,
      in: where,
      required: where === 'path' || !field.safeParse(undefined).success,
      ...(description ? { description } : {}),
      schema: fieldSchema,
    };
  });
}

function response(r: ResponseSpec): Json {
  const headers = r.headers
    ? Object.fromEntries(Object.entries(r.headers).map(([k, d]) => [k, { description: d, schema: { type: 'string' } }]))
    : undefined;
  const content = r.schema
    ? { [r.contentType ?? 'application/json']: { schema: jsonSchema(r.schema, 'output') } }
    : r.contentType
      ? { [r.contentType]: { schema: { type: 'string', contentMediaType: r.contentType } } }
      : undefined;
  return { description: r.description, ...(headers ? { headers } : {}), ...(content ? { content } : {}) };
}

function requestBody(body: NonNullable<RouteSpec['body']>): Json {
  if (body instanceof z.ZodType) return { required: true, content: { 'application/json': { schema: jsonSchema(body, 'input') } } };
  return {
    required: true,
    description: body.description,
    content: { [body.contentType]: { schema: { type: 'string', contentMediaType: body.contentType } } },
  };
}

const problem = (description: string): Json => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

/** The error responses every route can give, added so each route need not repeat them. */
function errorResponses(spec: RouteSpec): Record<string, Json> {
  const out: Record<string, Json> = {};
  if (spec.params || spec.query || spec.body) out['400'] = problem('Invalid request: a malformed id, parameter or field (code INVALID_REQUEST)');
  if (spec.body) out['415'] = problem('The body is not of the media type the route takes (code UNSUPPORTED_MEDIA_TYPE)');
  if (!spec.public) {
    out['401'] = problem('Missing or invalid credentials: bearer token or session cookie (code UNAUTHORISED)');
    out['403'] = problem(`Needs role ${spec.role ?? (spec.method === 'GET' ? 'viewer' : 'admin')}; or, with a session cookie, a missing CSRF token or a cross-site request (code FORBIDDEN)`);
  }
  if (spec.params) out['404'] = problem('No such resource (code NOT_FOUND)');
  out.default = problem('Any other error, as RFC 9457 problem JSON with a stable code');
  return out;
}

/** The OpenAPI 3.1 document for a set of routes. */
export function buildOpenApi(specs: RouteSpec[], info: { title?: string; version: string }, extraPaths: Record<string, Json> = {}): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const spec of [...specs].sort((a, b) => a.url.localeCompare(b.url))) {
    const p = (paths[openApiPath(spec.url)] ??= {});
    const responses: Record<string, Json> = {};
    for (const [code, r] of Object.entries(spec.responses)) responses[code] = response(r);
    p[spec.method.toLowerCase()] = {
      operationId: operationId(spec.method, spec.url),
      summary: spec.summary,
      ...(spec.description ? { description: spec.description } : {}),
      ...(spec.tags ? { tags: spec.tags } : {}),
      ...(spec.public ? { security: [] } : { 'x-postroom-role': spec.role ?? (spec.method === 'GET' ? 'viewer' : 'admin') }),
      parameters: [...parameters(spec.params, 'path'), ...parameters(spec.query, 'query')],
      ...(spec.body ? { requestBody: requestBody(spec.body) } : {}),
      responses: { ...responses, ...errorResponses(spec) },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: info.title ?? 'Postroom API',
      version: info.version,
      description:
        'Read the mail Postroom has kept. Every route needs credentials unless marked otherwise: `Authorization: Bearer <token>` ' +
        '(POSTROOM_API_TOKEN, or a user\'s `prt_` token), or the `postroom_session` cookie from POST /api/v1/session plus ' +
        '`x-csrf-token` on state-changing requests. `x-postroom-role` names the least role (viewer, operator, admin) an operation needs; ' +
        'errors are RFC 9457 problem JSON (`application/problem+json`) with a stable `code`.',
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'the API token (DATA_DIR/api-token or http.apiToken: admin), or a user\'s token (POST /api/v1/tokens)' },
        session: { type: 'apiKey', in: 'cookie', name: 'postroom_session', description: 'set by POST /api/v1/session; state-changing requests also send x-csrf-token' },
        basic: { type: 'http', scheme: 'basic', description: 'WebDAV only: any user name, the API token as the password (what file managers send)' },
      },
      schemas: { Problem: jsonSchema(Problem, 'output') },
    },
    security: [{ bearer: [] }, { session: [] }],
    paths: { ...paths, ...extraPaths },
  };
}
