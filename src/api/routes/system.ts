import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { systemStats } from '../../store/system-stats.js';
import { defineRoute } from '../route.js';
import type { ApiDeps } from '../deps.js';
import { packageVersion } from '../version.js';
import { mailError } from '../../core/errors.js';
import { RELOADABLE } from '../../config/reload.js';

const ReloadView = z.object({
  result: z.enum(['applied', 'unchanged']).describe('applied: new sessions use the new settings; unchanged: the file asks for nothing new that can change while running'),
  generation: z.number().int().describe('the config generation in force (1 at start)'),
  hash: z.string().describe('fingerprint of the config in force (metric postroom_config_info)'),
  applied: z.array(z.string()).describe('key paths now in force for new sessions'),
  needsRestart: z.array(z.string()).describe('key paths changed in the file that take effect only after a restart (left as they run)'),
  problems: z.array(z.string()),
});

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

  defineRoute(
    app,
    {
      method: 'POST',
      url: '/api/v1/system/reload',
      summary: 'Read the config file again and apply what can change while running, as SIGHUP does',
      description:
        `The whole file is validated first; an invalid one is 422 (each problem with its key path) and the running config is kept. ` +
        `New sessions take the new settings; sessions in progress finish on theirs. Reloadable: ${RELOADABLE.join(', ')}; ` +
        'certificates are read again even when their paths did not change. Other changes are listed in needsRestart and left as they run.',
      tags: ['operations'],
      audit: 'system.reload',
      responses: { 200: { description: 'the reload', schema: ReloadView } },
    },
    async ({ request }) => {
      if (!deps.reload) throw mailError('CONFIG', 'This server cannot reload its config');
      const r = await deps.reload();
      if (r.result === 'invalid') throw mailError('CONFIG_INVALID', `the running configuration is kept: ${r.problems.join('; ')}`);
      request.auditNote = { object: 'config', detail: { result: r.result, generation: r.generation, applied: r.applied, needsRestart: r.needsRestart } };
      return { ...r, result: r.result };
    },
  );
}
