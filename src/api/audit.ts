import type { FastifyInstance } from 'fastify';
import { recordAudit } from '../store/audit-log.js';
import type { Db } from '../store/db.js';
import type { Logger } from '../telemetry/log.js';
import { actorName, SAFE_METHODS, type AuthRouteConfig } from './auth.js';

/** What a handler may add to its route's audit entry (never a secret). */
export interface AuditNote {
  /** What was acted on, e.g. `user:alice`; default: the request path. */
  object?: string;
  detail?: Record<string, unknown>;
  /** For a public route (sign-in): who it was, since there is no principal yet. */
  actor?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    auditNote?: AuditNote;
  }
}

/**
 * The one place actions are recorded: every state-changing request that succeeded, on a route
 * whose config names an `audit` action (defineRoute names one for every route; `audit: false`
 * exempts one). Written in onSend, before the reply leaves: whoever sees the answer can find
 * the entry. A failed write is logged and does not turn a done action into an error.
 */
export function installAudit(app: FastifyInstance, deps: { db: Db; log: Logger }): void {
  app.decorateRequest('auditNote', undefined);
  app.addHook('onSend', async (request, reply, payload) => {
    if (SAFE_METHODS.has(request.method) || reply.statusCode >= 400) return payload;
    const action = (request.routeOptions.config as AuthRouteConfig | undefined)?.audit;
    if (!action) return payload;
    const note = request.auditNote ?? {};
    const p = request.principal;
    try {
      await recordAudit(deps.db, {
        actor: p ? actorName(p) : (note.actor ?? 'anonymous'),
        action,
        object: note.object ?? request.url.split('?')[0],
        detail: { ...note.detail, status: reply.statusCode, ...(p?.kind === 'token' ? { token: p.tokenId } : {}) },
        ip: request.ip,
      });
    } catch (err) {
      deps.log.error({ msg: 'audit write failed', action, err: err instanceof Error ? err.message : String(err) });
    }
    return payload;
  });
}
