import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { listAudit } from '../../store/audit-log.js';
import { defineRoute } from '../route.js';
import type { ApiDeps } from '../deps.js';

export const AUDIT = '/api/v1/audit';

const AuditEntry = z.object({
  id: z.number().int(),
  at: z.string(),
  actor: z.string().describe('user name; `api-token` for POSTROOM_API_TOKEN; `cli:<os user>` for the command line'),
  action: z.string().describe('e.g. delivery.retry, user.create, session.create'),
  object: z.string().nullable().describe('what was acted on: `user:alice`, or the request path'),
  detail: z.record(z.string(), z.unknown()).nullable(),
  ip: z.string().nullable(),
});

const AuditQuery = z.strictObject({
  actor: z.string().min(1).max(100).optional(),
  action: z.string().min(1).max(100).optional(),
  since: z.iso.datetime().optional().describe('only entries at or after this time (ISO 8601, UTC)'),
  limit: z.coerce.number().int().min(1).max(500).default(50).describe('page size (1–500)'),
  cursor: z.string().regex(/^\d{1,18}$/).optional().describe('opaque: the nextCursor of the previous page'),
});

/** GET /api/v1/audit (admin): who did what, newest first. */
export async function auditRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  defineRoute(
    app,
    {
      method: 'GET',
      url: AUDIT,
      summary: 'The audit log: every state-changing action, newest first',
      tags: ['users'],
      role: 'admin',
      query: AuditQuery,
      responses: { 200: { description: 'a page of entries', schema: z.object({ items: z.array(AuditEntry), nextCursor: z.string().nullable() }) } },
    },
    async ({ query }) =>
      listAudit(deps.db.kysely, {
        actor: query.actor,
        action: query.action,
        since: query.since ? new Date(query.since).toISOString() : undefined,
        before: query.cursor === undefined ? undefined : Number(query.cursor),
        limit: query.limit,
      }),
  );
}
