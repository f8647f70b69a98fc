import Fastify, { type FastifyInstance } from 'fastify';
import type { HttpConfig } from '../config/schema.js';
import type { BlobStore } from '../core/ports.js';
import type { Db } from '../store/db.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';

/** Everything the HTTP API needs; later issues add optional fields (intake, router, queue…). */
export interface ApiDeps {
  config: HttpConfig;
  db: Db;
  blobs: BlobStore;
  log: Logger;
  metrics: Metrics;
  token: string;
}

/** A built API server, not yet listening. */
export interface ApiServer {
  fastify: FastifyInstance;
  listen(): Promise<{ host: string; port: number }>;
  close(): Promise<void>;
}

/** Build the fastify server with every route module registered. */
export async function createApiServer(deps: ApiDeps): Promise<ApiServer> {
  const fastify = Fastify({ logger: false });
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
