import Fastify, { type FastifyInstance } from 'fastify';
import { packageVersion } from './version.js';
import type { HttpConfig } from '../config/schema.js';
import type { BlobStore } from '../core/ports.js';
import type { Db } from '../store/db.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import { installBearerAuth } from './auth.js';
import type { ObjectsConfig } from '../domain/objects/config.js';
import { buildOpenApi } from './openapi.js';
import { mailError } from '../core/errors.js';
import { installProblemHandlers, sendProblem } from './problem.js';
import { defineRoute, type RouteSpec } from './route.js';
import { deliveryRoutes } from './routes/deliveries.js';
import { pausedTargetRoutes } from './routes/paused-targets.js';
import { emailRoutes, type MailApiDeps } from './routes/email.js';
import { groupRoutes } from './routes/groups.js';
import { healthRoutes } from './routes/health.js';
import { inboundRoutes, type InboundDeps } from './routes/inbound.js';
import { messageContentRoutes } from './routes/message-content.js';
import { messageRoutes } from './routes/messages.js';
import { aclRoutes } from './routes/acl.js';
import { documentRoutes } from './routes/documents.js';
import { folderRoutes } from './routes/folders.js';
import { objectRoutes } from './routes/objects.js';
import { processRoutes } from './routes/processes.js';
import { trackerRoutes } from './routes/tracker.js';
import { webdavOpenApi, webdavRoutes } from './routes/webdav.js';
import { workflowRoutes } from './routes/workflows.js';
import { routeRoutes } from './routes/routes.js';
import { systemRoutes } from './routes/system.js';
import { messageEventRoutes } from './routes/message-events.js';
import { consoleRoutes } from '../console/serve.js';
import type { Router } from '../routing/router.js';

/** Everything the HTTP API needs; later issues add optional fields (intake, router, queue…). */
export interface ApiDeps {
  config: HttpConfig;
  db: Db;
  blobs: BlobStore;
  log: Logger;
  metrics: Metrics;
  token: string;
  /** `objects:` config, for the addresses shown with folders and workflows (absent: none shown). */
  objects?: ObjectsConfig;
  /** Told when a delivery was replayed (or a paused target resumed) by hand, so a worker in this process runs it at once. */
  onDeliveryRetry?: (deliveryId: string) => void;
  /** The intake door and the RCPT-time checks, for POST /api/v1/inbound (absent: it answers 503 4.3.5). */
  intake?: InboundDeps;
  /** Mail accounts: the secret box, fetch settings, and how to tell the fetcher and worker about changes (absent: /api/v1/email answers 503). */
  mail?: MailApiDeps;
  /** The router, for GET /api/v1/routes and the route tester (absent: they answer 503). */
  router?: Router;
  /** Told of each message kept in this process, for the live list (GET /api/v1/messages/events). */
  onStored?: (listener: (id: string) => void) => () => void;
  /** Where this process listens, for GET /api/v1/system (absent: the HTTP listener as configured). */
  listeners?: () => { kind: string; address: string }[];
}

/** A built API server, not yet listening. */
export interface ApiServer {
  fastify: FastifyInstance;
  listen(): Promise<{ host: string; port: number }>;
  close(): Promise<void>;
}

/** A route module: registers its routes (through defineRoute) on the instance it is given. */
export type ApiRoutes = (app: FastifyInstance, deps: ApiDeps) => Promise<void>;

/** Every route module, in order. A new capability adds its module here and nothing else. */
export const ROUTE_MODULES: readonly ApiRoutes[] = [healthRoutes, messageRoutes, messageContentRoutes, deliveryRoutes, pausedTargetRoutes, inboundRoutes, groupRoutes, objectRoutes, aclRoutes, folderRoutes, documentRoutes, workflowRoutes, processRoutes, webdavRoutes, emailRoutes, trackerRoutes, routeRoutes, messageEventRoutes, systemRoutes, consoleRoutes];

/** Build the fastify server with every route module registered, auth and the one error handler. */
export async function createApiServer(deps: ApiDeps, modules: readonly ApiRoutes[] = ROUTE_MODULES): Promise<ApiServer> {
  const fastify = Fastify({
    logger: false,
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
  installBearerAuth(fastify, deps.token);
  // One line per request, at debug: method, path, status, time. Never headers (the token).
  fastify.addHook('onResponse', async (request, reply) => {
    deps.log.debug({ msg: 'api', method: request.method, url: request.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) });
  });

  // Collect each route's spec as it is registered, for the OpenAPI document.
  const specs: RouteSpec[] = [];
  fastify.addHook('onRoute', (route) => {
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
    async listen() {
      await fastify.listen({ host: deps.config.listen.host, port: deps.config.listen.port });
      const addr = fastify.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : deps.config.listen.port;
      return { host: deps.config.listen.host, port };
    },
    close: () => fastify.close(),
  };
}

/** The OpenAPI document of a built server (for `npm run openapi`). */
export async function openApiDocument(api: ApiServer, token: string): Promise<unknown> {
  const res = await api.fastify.inject({ method: 'GET', url: '/api/v1/openapi.json', headers: { authorization: `Bearer ${token}` } });
  if (res.statusCode !== 200) throw new Error(`openapi.json: HTTP ${res.statusCode}: ${res.body}`);
  return res.json();
}
