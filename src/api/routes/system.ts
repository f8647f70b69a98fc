import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { systemStats } from '../../store/system-stats.js';
import { defineRoute } from '../route.js';
import type { ApiDeps } from '../deps.js';
import { packageVersion } from '../version.js';

const SystemView = z.object({
  version: z.string(),
  listeners: z.array(z.object({ kind: z.string(), address: z.string() })),
  store: z.object({ backend: z.enum(['sqlite', 'postgres']), messages: z.number().int() }),
  deliveries: z.record(z.string(), z.number().int()).describe('deliveries by status'),
  parseBacklog: z.number().int().describe('messages not parsed yet'),
  lastHour: z.array(z.number().int()).describe('messages received in each of the last 60 minutes, oldest first'),
  rss: z.number().int().describe('resident memory of this process, bytes'),
});

/** GET /api/v1/system: what the console's System page shows. */
export async function systemRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  defineRoute(
    app,
    {
      method: 'GET',
      url: '/api/v1/system',
      summary: 'Listeners, store, queue depth, dead letters, parse backlog, the last hour of intake, version',
      tags: ['operations'],
      responses: { 200: { description: 'the system', schema: SystemView } },
    },
    async ({ reply }) => {
      const stats = await systemStats(deps.db.kysely);
      reply.header('cache-control', 'no-store');
      return {
        version: packageVersion(),
        listeners: deps.listeners?.() ?? [{ kind: 'http', address: `${deps.config.listen.host}:${deps.config.listen.port}` }],
        store: { backend: deps.db.dialect, messages: stats.messages },
        deliveries: stats.deliveries,
        parseBacklog: stats.parseBacklog,
        lastHour: stats.lastHour,
        rss: process.memoryUsage.rss(),
      };
    },
  );
}
