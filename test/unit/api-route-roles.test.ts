import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { requiredRole, SAFE_METHODS, type AuthRouteConfig } from '../../src/api/auth.js';
import { createApiServer, type ApiServer } from '../../src/api/server.js';
import { validateConfig } from '../../src/config/load.js';
import { openDb, type Db } from '../../src/store/db.js';
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

  it('operators get exactly replay, resume, approve and reject; reads below admin need viewer; the rest is admin', () => {
    const byRole = (role: string) =>
      api.routes
        .filter((r) => !cfg(r).public && requiredRole(r.method, cfg(r)) === role)
        .map(key)
        .sort();
    assert.deepEqual(byRole('operator'), [
      'POST /api/v1/deliveries/:id/retry',
      'POST /api/v1/groups/:id/posts/:post/approve',
      'POST /api/v1/groups/:id/posts/:post/reject',
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
