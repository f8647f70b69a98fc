import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mailError, toSmtpReply } from '../../core/errors.js';
import { buildParsedView } from '../../mime/parsed-view.js';
import { redact } from '../../delivery/redact.js';
import type { Router } from '../../routing/router.js';
import type { ContentFacts, EnvelopeFacts } from '../../routing/rules.js';
import { defineRoute } from '../route.js';
import { Id } from '../schemas.js';
import type { ApiDeps, RoutingApiDeps } from '../deps.js';
import { actorName } from '../auth.js';
import { problemsOf } from '../../config/load.js';
import { routeSchema } from '../../config/schema.js';
import { OBJECT_ROUTE_NAMES } from '../../domain/objects/config.js';
import { getApiRoute, listRouteVersions, writeApiRoute } from '../../store/api-routes.js';
import type { FastifyRequest } from 'fastify';

export const ROUTES = '/api/v1/routes';

const Target = z.object({ kind: z.string(), params: z.unknown().describe('as configured, secrets replaced by "***"') });

const RouteView = z.object({
  name: z.string(),
  priority: z.number().int(),
  catchAll: z.boolean(),
  continue: z.boolean(),
  match: z.unknown().describe('the match block as configured'),
  deliver: z.array(Target),
  retry: z.unknown().nullable().describe("the route's retry policy; null: the default (docs/delivery.md)"),
  source: z.enum(['file', 'api']).describe('file: from the config file, read-only here (change the file and reload); api: managed through this API, in the store'),
  version: z.number().int().nullable().describe('api: the version in force (GET …/versions lists them); file: null'),
  updatedBy: z.string().nullable().describe('api: who made that version (a user, or api-token)'),
  updatedAt: z.string().nullable().describe('api: when'),
});

const RouteList = z.object({
  items: z.array(RouteView).describe("in the order they are tried: the file's routes by priority, then the API's by priority (catch-all routes after all others)"),
});

const RouteName = z.object({ name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/).describe('the route name') });

const RouteBody = z
  .record(z.string(), z.unknown())
  .describe("a route as in the config file's `routes:` (docs/config.md#routes, docs/routes.md), as JSON; checked by the same schema, problems answered 422 with each key path");

const StoredRoute = z.object({
  name: z.string(),
  source: z.literal('api'),
  version: z.number().int(),
  definition: z.unknown().describe('the route as sent, secrets replaced by "***"'),
  updatedBy: z.string(),
  updatedAt: z.string(),
});

const RouteVersionView = z.object({
  version: z.number().int(),
  op: z.enum(['create', 'update', 'delete']),
  definition: z.unknown().nullable().describe('the route as sent (secrets replaced by "***"); null for a delete'),
  actor: z.string().describe('who: a user name, or api-token; a token of a user adds its id'),
  at: z.string(),
});

const Written = z.object({ name: z.string(), source: z.literal('api'), version: z.number().int() });

const Address = z.string().min(1).max(256);

export const RouteTestQuery = z.strictObject({
  sender: z.string().max(256).default('').describe("envelope sender; '' for the null sender <>"),
  recipient: z
    .union([Address, z.array(Address).max(100)])
    .optional()
    .transform((v) => (v === undefined ? [] : typeof v === 'string' ? [v] : v))
    .describe("envelope recipient; repeat for several (default: the stored message's)"),
  clientIp: z.string().max(64).optional().describe('the client address a route may match on'),
  authUser: z.string().max(256).optional().describe('the SMTP AUTH user a route may match on'),
  message: Id.optional().describe('a stored message: its envelope (unless recipients are given) and its content (header and size conditions)'),
});

const RecipientVerdict = z.object({
  recipient: z.string(),
  routes: z.array(
    z.object({ route: z.string(), captures: z.record(z.string(), z.string()), targets: z.array(Target) }),
  ).describe('the routes that take this recipient, in order'),
  refusals: z.array(z.object({ route: z.string(), reason: z.string() })).describe('routes whose pattern matched but which did not take it, and why'),
  rcptReply: z.string().describe('what an SMTP client would be told at RCPT TO'),
});

const RouteTestResult = z.object({
  envelope: z.object({ sender: z.string(), recipients: z.array(z.string()), clientIp: z.string().nullable(), authUser: z.string().nullable() }),
  contentChecked: z.boolean().describe('false: no message given, so header and size conditions count as met (as at RCPT time)'),
  recipients: z.array(RecipientVerdict),
});

function requireRouter(deps: ApiDeps): Router {
  if (!deps.router) throw mailError('CONFIG', 'This server has no router');
  return deps.router;
}

function requireRouting(deps: ApiDeps): RoutingApiDeps {
  if (!deps.routing) throw mailError('CONFIG', 'This server does not manage routes through the API');
  return deps.routing;
}

/** Who made a change: the user (or api-token), and the token when one was used. */
function actorOf(request: FastifyRequest): string {
  const p = request.principal;
  if (!p) return 'anonymous';
  return p.kind === 'token' && p.tokenId ? `${actorName(p)} (token ${p.tokenId})` : actorName(p);
}

/** A file route (or one of `objects:`) cannot be changed here: it would be back at the next reload. */
function refuseFileRoute(routing: RoutingApiDeps, name: string): void {
  if (routing.fileRoutes().has(name) || (OBJECT_ROUTE_NAMES as readonly string[]).includes(name)) {
    throw mailError(
      'CONFLICT',
      `Route '${name}' comes from the config file (source: file) and is read-only through the API: change it in the file, then reload (postroom reload or SIGHUP)`,
    );
  }
}

/** The body checked by the config's route schema: 422 naming each key path, like check-config. */
function validRoute(body: unknown, name?: string): Record<string, unknown> {
  const route = { ...(body as Record<string, unknown>) };
  if (name !== undefined) {
    if (route.name === undefined) route.name = name;
    else if (route.name !== name) throw mailError('ROUTE_INVALID', `name: '${String(route.name)}' is not the name in the path ('${name}'); a route is renamed by creating the new one and deleting the old`);
  }
  const r = routeSchema.safeParse(route);
  if (!r.success) throw mailError('ROUTE_INVALID', problemsOf(r.error).join('; '));
  return route;
}

/** `If-Match: "3"` (or 3): the version the client read; another one now is 412, not a lost update. */
function expectedVersion(request: FastifyRequest): number | undefined {
  const h = request.headers['if-match'];
  if (typeof h !== 'string') return undefined;
  const v = Number(h.replace(/^W\//, '').replace(/"/g, ''));
  if (!Number.isInteger(v) || v < 1) throw mailError('INVALID_REQUEST', 'If-Match: give the route version, e.g. "3"');
  return v;
}

function targetsOf(deliver: readonly { kind: string; params: unknown }[]): z.output<typeof Target>[] {
  return deliver.map((d) => ({ kind: d.kind, params: redact(d.params) }));
}

/** GET /api/v1/routes and POST /api/v1/routes/test: what the router would do, without sending anything. */
export async function routeRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  defineRoute(
    app,
    {
      method: 'GET',
      url: ROUTES,
      summary: 'Every route in the order it is tried, with its match, targets and retry policy',
      tags: ['routes'],
      responses: { 200: { description: 'the routes', schema: RouteList } },
    },
    async () => {
      const sources = deps.routing?.sources();
      return {
        items: requireRouter(deps).routes.map((c) => {
          const src = sources?.get(c.name) ?? { source: 'file' as const };
          return {
            name: c.name,
            priority: c.route.priority,
            catchAll: c.route.catchAll,
            continue: c.route.continue,
            match: redact(c.route.match),
            deliver: targetsOf(c.route.deliver),
            retry: c.route.retry ?? null,
            source: src.source,
            version: src.source === 'api' ? src.version : null,
            updatedBy: src.source === 'api' ? src.updatedBy : null,
            updatedAt: src.source === 'api' ? src.updatedAt : null,
          };
        }),
      };
    },
  );

  defineRoute(
    app,
    {
      method: 'POST',
      url: ROUTES,
      summary: 'Create a route managed through the API (stored, applied by every node within store.routesPollInterval)',
      description:
        "The body is a route as in the config file's `routes:`, checked by the same schema. API routes are tried after the file's. " +
        'A name the file uses is 409; a route the schema refuses is 422 with each key path.',
      tags: ['routes'],
      audit: 'route.create',
      body: RouteBody,
      responses: { 201: { description: 'created', schema: Written } },
    },
    async ({ body, request, reply }) => {
      const routing = requireRouting(deps);
      const route = validRoute(body);
      const name = String(route.name);
      refuseFileRoute(routing, name);
      const w = await writeApiRoute(deps.db, { op: 'create', name, definition: route, actor: actorOf(request) });
      if (!w.ok) throw mailError('CONFLICT', `Route '${name}' exists already: change it with PUT ${ROUTES}/${name}`);
      request.auditNote = { object: `route:${name}`, detail: { version: w.version } };
      await routing.refresh();
      return reply.code(201).send({ name, source: 'api', version: w.version });
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: `${ROUTES}/:name`,
      summary: 'One route managed through the API, as stored (disabled ones too)',
      tags: ['routes'],
      params: RouteName,
      responses: { 200: { description: 'the route', schema: StoredRoute } },
    },
    async ({ params }) => {
      const routing = requireRouting(deps);
      const row = await getApiRoute(deps.db, params.name);
      if (!row) {
        if (routing.fileRoutes().has(params.name)) throw mailError('NOT_FOUND', `Route '${params.name}' comes from the config file: see GET ${ROUTES}`);
        throw mailError('NOT_FOUND', `No route '${params.name}' managed through the API`);
      }
      return { name: row.name, source: 'api' as const, version: row.version, definition: redact(row.definition), updatedBy: row.updatedBy, updatedAt: row.updatedAt };
    },
  );

  defineRoute(
    app,
    {
      method: 'PUT',
      url: `${ROUTES}/:name`,
      summary: 'Replace a route managed through the API (a new version)',
      description: 'If-Match with the version read makes a concurrent change a 412 instead of a lost update. A file route is 409.',
      tags: ['routes'],
      audit: 'route.update',
      params: RouteName,
      body: RouteBody,
      responses: { 200: { description: 'the new version', schema: Written } },
    },
    async ({ params, body, request }) => {
      const routing = requireRouting(deps);
      refuseFileRoute(routing, params.name);
      const route = validRoute(body, params.name);
      const w = await writeApiRoute(deps.db, { op: 'update', name: params.name, definition: route, actor: actorOf(request), expectVersion: expectedVersion(request) });
      if (!w.ok && w.reason === 'missing') throw mailError('NOT_FOUND', `No route '${params.name}' managed through the API: create it with POST ${ROUTES}`);
      if (!w.ok) throw mailError('PRECONDITION_FAILED', `Route '${params.name}' was changed since that version: read it again`);
      request.auditNote = { object: `route:${params.name}`, detail: { version: w.version } };
      await routing.refresh();
      return { name: params.name, source: 'api' as const, version: w.version };
    },
  );

  defineRoute(
    app,
    {
      method: 'DELETE',
      url: `${ROUTES}/:name`,
      summary: 'Remove a route managed through the API (its versions stay listed)',
      tags: ['routes'],
      audit: 'route.delete',
      params: RouteName,
      responses: { 204: { description: 'removed' } },
    },
    async ({ params, request, reply }) => {
      const routing = requireRouting(deps);
      refuseFileRoute(routing, params.name);
      const w = await writeApiRoute(deps.db, { op: 'delete', name: params.name, actor: actorOf(request), expectVersion: expectedVersion(request) });
      if (!w.ok && w.reason === 'missing') throw mailError('NOT_FOUND', `No route '${params.name}' managed through the API`);
      if (!w.ok) throw mailError('PRECONDITION_FAILED', `Route '${params.name}' was changed since that version: read it again`);
      request.auditNote = { object: `route:${params.name}`, detail: { version: w.version } };
      await routing.refresh();
      return reply.code(204).send();
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: `${ROUTES}/:name/versions`,
      summary: 'Every version of a route managed through the API, newest first, with who made it and when',
      tags: ['routes'],
      params: RouteName,
      responses: { 200: { description: 'the versions', schema: z.object({ items: z.array(RouteVersionView) }) } },
    },
    async ({ params }) => {
      const versions = await listRouteVersions(deps.db, params.name);
      if (!versions.length) throw mailError('NOT_FOUND', `No route '${params.name}' was ever managed through the API`);
      return {
        items: versions.map((v) => ({ version: v.version, op: v.op, definition: v.definition === null ? null : redact(v.definition), actor: v.actor, at: v.at })),
      };
    },
  );

  defineRoute(
    app,
    {
      // GET: it changes nothing, so it needs no CSRF token, no audit row, and a viewer may ask.
      method: 'GET',
      url: `${ROUTES}/test`,
      summary: 'Which route takes each recipient of an envelope (or a stored message), without sending anything',
      description:
        'Runs the router as RCPT time does (sender, client and target checks) and, for a stored message, with its content ' +
        '(header and size conditions). Nothing is kept, planned or delivered. It reads configuration only, so it is a GET any viewer may call.',
      tags: ['routes'],
      query: RouteTestQuery,
      responses: { 200: { description: 'each recipient and its routes', schema: RouteTestResult } },
    },
    async ({ query: body }) => {
      const router = requireRouter(deps);
      let env: EnvelopeFacts = { mailFrom: body.sender, clientIp: body.clientIp ?? null, authUser: body.authUser ?? null };
      let recipients = body.recipient;
      let content: ContentFacts | undefined;
      if (body.message) {
        const parsed = await buildParsedView(deps, body.message);
        const m = parsed.message;
        if (!recipients.length) {
          recipients = m.rcptTo;
          env = { mailFrom: m.mailFrom, clientIp: m.clientIp, authUser: m.authUser };
        }
        content = { headers: parsed.headers, size: m.size, parts: parsed.parts, from: parsed.addresses.from ?? [] };
      }
      if (!recipients.length) throw mailError('INVALID_REQUEST', 'query.recipient: give at least one recipient, or a message');
      const verdicts = [];
      for (const rcpt of recipients) {
        const d = await router.decide(rcpt, env, content);
        let rcptReply = '250 2.1.5 Recipient OK';
        if (!d.matches.length && router.routes.length) {
          const reply = toSmtpReply(d.refusal ?? mailError('UNKNOWN_RECIPIENT', `No such recipient here: <${rcpt}>`));
          rcptReply = `${reply.code} ${reply.message}`;
        }
        verdicts.push({
          recipient: rcpt,
          routes: d.matches.map((mt) => ({ route: mt.route.name, captures: mt.captures, targets: targetsOf(mt.route.route.deliver) })),
          refusals: d.refusals,
          rcptReply,
        });
      }
      return {
        envelope: { sender: env.mailFrom, recipients, clientIp: env.clientIp ?? null, authUser: env.authUser ?? null },
        contentChecked: !!content,
        recipients: verdicts,
      };
    },
  );
}
