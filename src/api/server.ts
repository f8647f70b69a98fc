import Fastify, { type FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { installAudit } from './audit.js';
import { installAuth } from './auth.js';
import { packageVersion } from './version.js';
import { buildOpenApi } from './openapi.js';
import { mailError } from '../core/errors.js';
import { installProblemHandlers, sendProblem } from './problem.js';
import { defineRoute, type RouteSpec } from './route.js';
import { deliveryRoutes } from './routes/deliveries.js';
import { pausedTargetRoutes } from './routes/paused-targets.js';
import { emailRoutes } from './routes/email.js';
import { groupRoutes } from './routes/groups.js';
import { healthRoutes } from './routes/health.js';
import { inboundRoutes } from './routes/inbound.js';
import type { ApiDeps } from './deps.js';
import { messageContentRoutes } from './routes/message-content.js';
import { messageRoutes } from './routes/messages.js';
import { aclRoutes } from './routes/acl.js';
import { documentRoutes } from './routes/documents.js';
import { folderRoutes } from './routes/folders.js';
import { objectRoutes } from './routes/objects.js';
import { processRoutes } from './routes/processes.js';
import { trackerRoutes } from './routes/tracker.js';
import { auditRoutes } from './routes/audit.js';
import { sessionRoutes } from './routes/session.js';
import { tokenRoutes } from './routes/tokens.js';
import { userRoutes } from './routes/users.js';
import { webdavOpenApi, webdavRoutes } from './routes/webdav.js';
import { workflowRoutes } from './routes/workflows.js';
import { routeRoutes } from './routes/routes.js';
import { systemRoutes } from './routes/system.js';
import { messageEventRoutes } from './routes/message-events.js';
import { consoleRoutes } from './routes/console.js';


/** A built API server, not yet listening. */
export interface ApiServer {
  fastify: FastifyInstance;
  /** Every route as registered (method, url, config): what the role and audit checks read. */
  routes: readonly { method: string; url: string; config: Record<string, unknown> }[];
  listen(): Promise<{ host: string; port: number }>;
  /** Accepting connections now (GET /readyz asks). */
  listening(): boolean;
  close(): Promise<void>;
}

/** A route module: registers its routes (through defineRoute) on the instance it is given. */
export type ApiRoutes = (app: FastifyInstance, deps: ApiDeps) => Promise<void>;

/** Every route module, in order. A new capability adds its module here and nothing else. */
export const ROUTE_MODULES: readonly ApiRoutes[] = [healthRoutes, messageRoutes, messageContentRoutes, deliveryRoutes, pausedTargetRoutes, inboundRoutes, groupRoutes, objectRoutes, aclRoutes, folderRoutes, documentRoutes, workflowRoutes, processRoutes, webdavRoutes, emailRoutes, trackerRoutes, sessionRoutes, userRoutes, tokenRoutes, auditRoutes, routeRoutes, messageEventRoutes, systemRoutes, consoleRoutes];

/** Build the fastify server with every route module registered, auth and the one error handler. */
export async function createApiServer(deps: ApiDeps, modules: readonly ApiRoutes[] = ROUTE_MODULES): Promise<ApiServer> {
  const tls = deps.config.tls ? { key: readFileSync(deps.config.tls.key), cert: readFileSync(deps.config.tls.cert) } : null;
  const fastify = Fastify({
    logger: false,
    // http.tls: HTTPS, so session cookies travel encrypted only (they are then marked Secure).
    https: tls,
    // Bodies we accept (uploads, later) are bounded by config; everything else streams out.
    bodyLimit: deps.config.maxUploadSize,
    // Without this, a client that opens connections and never sends holds them forever.
    requestTimeout: 60_000,
    return503OnClosing: true,
    // Malformed URLs (bad percent-encoding) fail before routing; answer them as problem JSON too.
    frameworkErrors: (err, request, reply) => {
      sendProblem(reply, mailError('INVALID_REQUEST', err.message), request.url);
    },
  });
  installProblemHandlers(fastify, deps.log);
  installAuth(fastify, { db: deps.db, token: deps.token, config: deps.config });
  installAudit(fastify, { db: deps.db, log: deps.log });
  // One line per request, at debug: method, path, status, time. Never headers (the token).
  fastify.addHook('onResponse', async (request, reply) => {
    deps.log.debug({ msg: 'api', method: request.method, url: request.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) });
  });

  // Collect each route's spec as it is registered, for the OpenAPI document.
  const specs: RouteSpec[] = [];
  const routes: { method: string; url: string; config: Record<string, unknown> }[] = [];
  fastify.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url, config: (route.config ?? {}) as Record<string, unknown> });
    const spec = (route.config as { spec?: RouteSpec } | undefined)?.spec;
    if (spec && route.method !== 'HEAD') specs.push(spec);
  });
  for (const mod of modules) await fastify.register(async (scope) => mod(scope, deps));

  const version = packageVersion();
  let document: Record<string, unknown> | undefined;
  defineRoute(
    fastify,
    {
      method: 'GET',
      url: '/api/v1/openapi.json',
      summary: 'This API as an OpenAPI 3.1 document (generated from the same zod schemas that validate requests)',
      tags: ['operations'],
      responses: { 200: { description: 'the OpenAPI document', contentType: 'application/json' } },
    },
    async () => (document ??= buildOpenApi(specs, { version }, modules.includes(webdavRoutes) ? webdavOpenApi() : {})),
  );
  await fastify.ready();

  return {
    fastify,
    routes,
    async listen() {
      await fastify.listen({ host: deps.config.listen.host, port: deps.config.listen.port });
      const addr = fastify.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : deps.config.listen.port;
      return { host: deps.config.listen.host, port };
    },
    listening: () => fastify.server.listening,
    close: () => fastify.close(),
  };
}

/** The OpenAPI document of a built server (for `npm run openapi`). */
export async function openApiDocument(api: ApiServer, token: string): Promise<unknown> {
  const res = await api.fastify.inject({ method: 'GET', url: '/api/v1/openapi.json', headers: { authorization: `Bearer ${token}` } });
  if (res.statusCode !== 200) throw new Error(`openapi.json: HTTP ${res.statusCode}: ${res.body}`);
  return res.json();
}
