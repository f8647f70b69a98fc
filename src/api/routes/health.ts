import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { mailError } from '../../core/errors.js';
import { defineRoute } from '../route.js';
import { Health } from '../schemas.js';
import type { ApiDeps } from '../deps.js';

/** GET /healthz (no token: load balancers and orchestrators call it) and GET /metrics (token). */
export async function healthRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  defineRoute(
    app,
    {
      method: 'GET',
      url: '/healthz',
      summary: 'Liveness and readiness: answers 200 only when the database answers',
      tags: ['operations'],
      public: true,
      responses: { 200: { description: 'healthy', schema: Health } },
    },
    async ({ reply }) => {
      try {
        await sql`select 1`.execute(deps.db.kysely);
      } catch (err) {
        throw mailError('STORE_FAILED', 'Database does not answer', { cause: err });
      }
      reply.header('cache-control', 'no-store');
      return { status: 'ok', db: 'ok' };
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: '/metrics',
      summary: 'Prometheus metrics (text exposition format)',
      description:
        'Needs the bearer token like the rest of the API (Prometheus: `authorization: { credentials: <token> }` ' +
        'in the scrape config): message counts and sizes are not for everyone on the network.',
      tags: ['operations'],
      responses: { 200: { description: 'metrics', contentType: 'text/plain; version=0.0.4' } },
    },
    async ({ reply }) => {
      const text = await deps.metrics.registry.metrics();
      return reply.type(deps.metrics.registry.contentType).header('cache-control', 'no-store').send(text);
    },
  );
}
