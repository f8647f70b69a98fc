import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import { listPausedTargets, resumeTarget } from '../../store/paused-targets.js';
import { defineRoute } from '../route.js';
import type { ApiDeps } from '../deps.js';

export const PAUSED_TARGETS = '/api/v1/paused-targets';

const PausedTarget = z.object({
  route: z.string(),
  targetIndex: z.number().int().describe('position of the target in the route\'s `deliver` list'),
  kind: z.string(),
  destination: z.string().nullable().describe('where the target points, e.g. "webhook https://hooks.example.com"'),
  reason: z.string().describe('why it was paused: the endpoint\'s answer (410 Gone)'),
  delivery: z.string().nullable().describe('the delivery whose answer paused it'),
  pausedAt: z.string(),
  pending: z.number().int().describe('pending deliveries it holds back (not attempted while paused)'),
});

const PausedParams = z.strictObject({
  route: z.string().min(1).max(200),
  targetIndex: z.coerce.number().int().min(0),
});

/** GET /api/v1/paused-targets, POST /api/v1/paused-targets/:route/:targetIndex/resume. */
export async function pausedTargetRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  defineRoute(
    app,
    {
      method: 'GET',
      url: PAUSED_TARGETS,
      summary: 'Route targets paused because their endpoint answered 410 Gone',
      description: 'Their deliveries stay pending and are not attempted (no attempt is spent) until the target is resumed.',
      tags: ['deliveries'],
      responses: { 200: { description: 'every paused target', schema: z.object({ items: z.array(PausedTarget) }) } },
    },
    async () => ({ items: await listPausedTargets(deps.db.kysely) }),
  );

  defineRoute(
    app,
    {
      method: 'POST',
      url: `${PAUSED_TARGETS}/:route/:targetIndex/resume`,
      summary: 'Resume a paused route target: its pending deliveries are attempted again',
      description: 'Deliveries keep their attempt count and age; one older than its route\'s retry maxAge dies at its next attempt (replay it with POST /api/v1/deliveries/{id}/retry).',
      tags: ['deliveries'],
      role: 'operator',
      audit: 'target.resume',
      params: PausedParams,
      responses: { 200: { description: 'resumed', schema: z.object({ route: z.string(), targetIndex: z.number().int(), resumed: z.literal(true) }) } },
    },
    async ({ params }) => {
      if (!(await resumeTarget(deps.db, params.route, params.targetIndex))) {
        throw mailError('NOT_FOUND', `Target ${params.targetIndex} of route ${params.route} is not paused`);
      }
      deps.onDeliveryRetry?.(`${params.route}/${params.targetIndex}`);
      return { route: params.route, targetIndex: params.targetIndex, resumed: true as const };
    },
  );
}
