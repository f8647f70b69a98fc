import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { requiredRole, SAFE_METHODS, type AuthRouteConfig } from '../../src/api/auth.js';
import { createApiServer, ROUTE_MODULES, type ApiRoutes, type ApiServer } from '../../src/api/server.js';
import { validateConfig } from '../../src/config/load.js';
import { listAudit } from '../../src/store/audit-log.js';
import { migrate, openDb, type Db } from '../../src/store/db.js';
import { createSession } from '../../src/store/sessions.js';
import { addUser } from '../../src/store/users.js';
import { openBlobStore } from '../../src/store/open-blobs.js';
import { createLogger } from '../../src/telemetry/log.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { tempDir } from '../helpers/env.js';

/**
 * Every route of the real server, as registered: each state-changing one is audited or
 * exempted by name here, and the roles below operator's and admin's are the ones listed. A
 * new route that changes state is audited (defineRoute names it) and admin-only unless it
 * says otherwise; a route registered by hand without `audit` fails this test.
 */
describe('route roles and audit declarations', () => {
  let tmp: { dir: string; cleanup(): void };
  let db: Db;
  let api: ApiServer;

  before(async () => {
    tmp = tempDir();
    const config = validateConfig({ dataDir: tmp.dir, http: { apiToken: 'route-roles-test-token' } });
    db = openDb(undefined, tmp.dir);
    api = await createApiServer({ config: config.http, db, blobs: openBlobStore(config, db), log: createLogger('silent'), metrics: createMetrics(), token: 'route-roles-test-token' });
  });
  after(async () => {
    await api?.close();
    await db?.close();
    tmp?.cleanup();
  });

  const key = (r: { method: string; url: string }) => `${r.method} ${r.url}`;
  const cfg = (r: { config: Record<string, unknown> }) => r.config as AuthRouteConfig;

  it('every state-changing route records an audit action or is exempted here by name', () => {
    // Mail intake: the kept message (with its client IP) is its own record, not an operator's action.
    const exempt = new Set(['POST /api/v1/inbound']);
    const changing = api.routes.filter((r) => !SAFE_METHODS.has(r.method));
    assert.ok(changing.length > 30, String(changing.length));
    for (const r of changing) {
      const audit = cfg(r).audit;
      if (exempt.has(key(r))) assert.equal(audit, false, key(r));
      else assert.ok(typeof audit === 'string' && audit.length > 0, `${key(r)} has no audit action`);
    }
    for (const r of api.routes.filter((x) => SAFE_METHODS.has(x.method))) assert.ok(!cfg(r).audit, `${key(r)} reads and is not audited`);
  });

  it('operators get exactly replay, resume, approve, reject, folder enable/disable and message pin/unpin; reads below admin need viewer; the rest is admin', () => {
    const byRole = (role: string) =>
      api.routes
        .filter((r) => !cfg(r).public && requiredRole(r.method, cfg(r)) === role)
        .map(key)
        .sort();
    assert.deepEqual(byRole('operator'), [
      'DELETE /api/v1/messages/:id/pin',
      'POST /api/v1/deliveries/:id/retry',
      'POST /api/v1/deliveries/replay',
      'POST /api/v1/email/folders/:id/disable',
      'POST /api/v1/email/folders/:id/enable',
      'POST /api/v1/groups/:id/posts/:post/approve',
      'POST /api/v1/groups/:id/posts/:post/reject',
      'POST /api/v1/messages/:id/pin',
      'POST /api/v1/paused-targets/:route/:targetIndex/resume',
    ]);
    const changingForViewers = byRole('viewer').filter((k) => !SAFE_METHODS.has(k.split(' ')[0]!));
    // Your own session and tokens (the handlers limit them to your own).
    assert.deepEqual(changingForViewers, ['DELETE /api/v1/session', 'DELETE /api/v1/tokens/:id', 'POST /api/v1/tokens']);
    const adminReads = byRole('admin').filter((k) => k.startsWith('GET ') || k.startsWith('HEAD '));
    assert.deepEqual(adminReads, ['GET /api/v1/audit', 'GET /api/v1/users', 'HEAD /api/v1/audit', 'HEAD /api/v1/users']);
  });

  it('defaults an unmarked route to viewer for reads and admin for anything else', () => {
    assert.equal(requiredRole('GET', {}), 'viewer');
    assert.equal(requiredRole('HEAD', undefined), 'viewer');
    for (const m of ['POST', 'PUT', 'PATCH', 'DELETE']) assert.equal(requiredRole(m, {}), 'admin');
    assert.equal(requiredRole('POST', { role: 'operator' }), 'operator');
  });
});

describe('routes registered by hand (console pages): login redirect and the _csrf form field', () => {
  let tmp: { dir: string; cleanup(): void };
  let db: Db;
  let api: ApiServer;
  let cookie: string;
  let csrf: string;
  const posted: unknown[] = [];

  before(async () => {
    tmp = tempDir();
    const config = validateConfig({ dataDir: tmp.dir, http: { apiToken: 'route-roles-test-token', signIn: { scryptCost: 10 } } });
    db = openDb(undefined, tmp.dir);
    await migrate(db);
    const page: ApiRoutes = async (app) => {
      app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))));
      app.route({ method: 'GET', url: '/console-test', config: { loginRedirect: '/login' }, handler: async () => 'page' });
      app.route({
        method: 'POST',
        url: '/console-test/form',
        config: { role: 'viewer', audit: 'test.form' },
        handler: async (request) => {
          posted.push(request.body);
          return { ok: true };
        },
      });
    };
    api = await createApiServer({ config: config.http, db, blobs: openBlobStore(config, db), log: createLogger('silent'), metrics: createMetrics(), token: 'route-roles-test-token' }, [...ROUTE_MODULES, page]);
    const user = await addUser(db, { name: 'pat', role: 'viewer', password: 'pat password' }, 10);
    const s = await createSession(db, user, config.http.sessions);
    cookie = `postroom_session=${s.token}`;
    csrf = s.session.csrfToken;
  });
  after(async () => {
    await api?.close();
    await db?.close();
    tmp?.cleanup();
  });

  it('sends a page without credentials to the login page (303 with ?next=), and serves it with them', async () => {
    const res = await api.fastify.inject({ method: 'GET', url: '/console-test?x=1' });
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/login?next=%2Fconsole-test%3Fx%3D1');
    assert.equal((await api.fastify.inject({ method: 'GET', url: '/console-test', headers: { cookie } })).statusCode, 200);
  });

  it('takes the CSRF token from a form\'s _csrf field (removed before the handler sees the body), and refuses the form without it', async () => {
    const form = (body: string) => api.fastify.inject({ method: 'POST', url: '/console-test/form', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: body });
    assert.equal((await form('note=hi')).statusCode, 403);
    assert.equal((await form(`note=hi&_csrf=${'A'.repeat(43)}`)).statusCode, 403);
    assert.deepEqual(posted, []);
    const ok = await form(`note=hi&_csrf=${encodeURIComponent(csrf)}`);
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(posted, [{ note: 'hi' }]);
    const audit = await listAudit(db.kysely, { action: 'test.form', limit: 10 });
    assert.deepEqual(audit.items.map((e) => [e.actor, e.object]), [['pat', '/console-test/form']]);
  });
});
