import type { FastifyInstance } from 'fastify';
import os from 'node:os';
import { sql } from 'kysely';
import { mailError, toProblem, type MailError } from '../../core/errors.js';
import { probeWrite } from '../../store/health.js';
import { PROBLEM_TYPE } from '../problem.js';
import { defineRoute } from '../route.js';
import { Health, Live, Ready, ReadyProblem } from '../schemas.js';
import type { ApiDeps } from '../deps.js';

/** A store that takes longer than this to commit one row is not ready (a lock held, a hung disk). */
const PROBE_TIMEOUT_MS = 5_000;

/**
 * Health for orchestrators, without a token: GET /livez (the process runs), GET /readyz (it can
 * take mail now), GET /healthz (the database answers; kept for existing checks). GET /metrics
 * needs the token unless http.metrics.public.
 */
export async function healthRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  defineRoute(
    app,
    {
      method: 'GET',
      url: '/livez',
      summary: 'Liveness: 200 whenever the process answers at all',
      description:
        'Touches nothing but the event loop that answers it, so a slow or lost database never gets a ' +
        'running process killed (that is what /readyz is for: take it out of rotation instead).',
      tags: ['operations'],
      public: true,
      responses: { 200: { description: 'the event loop turns', schema: Live } },
    },
    async ({ reply }) => {
      reply.header('cache-control', 'no-store');
      return { status: 'ok' };
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: '/readyz',
      summary: 'Readiness: 200 when the store takes a write, every listener is up and the process is not stopping',
      description:
        'Each call commits one row (`health_probes`, one per node): a read-only or full store fails here ' +
        'though it still answers reads. 503 problem JSON names the failed checks in `detail` and `checks`.',
      tags: ['operations'],
      public: true,
      responses: {
        200: { description: 'ready', schema: Ready },
        503: { description: 'not ready: which check failed', schema: ReadyProblem },
      },
    },
    async ({ reply, request }) => {
      reply.header('cache-control', 'no-store');
      const checks = await readiness(deps);
      const failed = Object.entries(checks).filter(([, v]) => v !== 'ok');
      if (!failed.length) return { status: 'ready', checks };
      // The first failure picks the code: stopping says why the rest fail too.
      const err: MailError = checks.shutdown !== 'ok'
        ? mailError('SHUTTING_DOWN', 'stopping: take this node out of rotation')
        : checks.store !== 'ok'
          ? mailError('STORE_FAILED', `the store does not take writes: ${checks.store}`)
          : mailError('NOT_READY', `listeners down: ${checks.listeners}`);
      const problem = { ...toProblem(err, request.url), status: 503, detail: failed.map(([k, v]) => `${k}: ${v}`).join('; '), checks };
      return reply.code(503).type(PROBLEM_TYPE).send(Buffer.from(JSON.stringify(problem)));
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: '/healthz',
      summary: 'The database answers (a read): 200, else 503; see /livez and /readyz for orchestrators',
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

  const open = deps.config.metrics.public;
  defineRoute(
    app,
    {
      method: 'GET',
      url: '/metrics',
      summary: 'Prometheus metrics (text exposition format)',
      description: open
        ? 'Open without a token on this server (http.metrics.public: true).'
        : 'Needs the bearer token like the rest of the API (Prometheus: `authorization: { credentials: <token> }` ' +
          'in the scrape config): message counts and sizes are not for everyone on the network. ' +
          '`http.metrics.public: true` opens it; `http.metrics.listen` serves it on a listener of its own without a token.',
      tags: ['operations'],
      public: open,
      responses: { 200: { description: 'metrics', contentType: 'text/plain; version=0.0.4' } },
    },
    async ({ reply }) => {
      const text = await deps.metrics.registry.metrics();
      return reply.type(deps.metrics.registry.contentType).header('cache-control', 'no-store').send(text);
    },
  );
}

/** Each readiness check: 'ok', or what is wrong in words an operator can act on. */
async function readiness(deps: ApiDeps): Promise<{ shutdown: string; store: string; listeners: string }> {
  const r = deps.readiness;
  const shutdown = r?.stopping() ? 'stopping' : 'ok';
  const down = (r?.listeners() ?? []).filter((l) => !l.up).map((l) => `${l.kind} is not listening`);
  let store = 'ok';
  // Even while stopping: the answer then says everything that is wrong, not only the first.
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probeWrite(deps.db, r?.node ?? os.hostname()),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no commit within ${PROBE_TIMEOUT_MS / 1000} s`)), PROBE_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    // Said to anyone who asks (the route is public): the driver's words, cut short; the log has it all.
    store = ((err as Error).message || String(err)).slice(0, 200);
    deps.log.warn({ err }, 'readiness: the store does not take writes');
  } finally {
    clearTimeout(timer);
  }
  return { shutdown, store, listeners: down.length ? down.join(', ') : 'ok' };
}
