import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { validateConfig } from '../../src/config/load.js';
import { changedPaths, planReload, RELOADABLE } from '../../src/config/reload.js';

const base = {
  smtp: { listen: '127.0.0.1:2525' },
  routes: [{ name: 'a', match: { recipient: 'a@x.test' }, deliver: [{ discard: null }] }],
};

describe('planReload: what a reload applies and what waits for a restart', () => {
  it('routes and SMTP limits apply; listeners, the store and parse settings need a restart and keep their running value', () => {
    const old = validateConfig(base);
    const next = validateConfig({
      ...base,
      smtp: { listen: '0.0.0.0:25', maxRecipients: 3 },
      store: { database: '/elsewhere/p.db' },
      parse: { workers: 4 },
      routes: [{ name: 'b', match: { recipient: 'b@x.test' }, deliver: [{ discard: null }] }],
    });
    const plan = planReload(old, next);
    assert.deepEqual(plan.applied.sort(), ['routes', 'smtp.maxRecipients']);
    assert.deepEqual(plan.needsRestart.sort(), ['parse.workers', 'smtp.listen', 'store.database']);
    assert.equal(plan.effective.smtp.maxRecipients, 3);
    assert.deepEqual(plan.effective.smtp.listen, old.smtp.listen);
    assert.equal(plan.effective.store.database, undefined);
    assert.equal(plan.effective.parse.workers, old.parse.workers);
    assert.deepEqual(plan.effective.routes.map((r) => r.name), ['b']);
  });

  it('switching STARTTLS or AUTH on is decided when the listener is built: needs a restart', () => {
    const old = validateConfig(base);
    const next = validateConfig({ ...base, smtp: { ...base.smtp, tls: { key: 'k.pem', cert: 'c.pem' } } });
    const plan = planReload(old, next);
    assert.deepEqual(plan.needsRestart, ['smtp.tls']);
    assert.equal(plan.effective.smtp.tls, undefined);
  });

  it('property: any mix of reloadable limits is applied exactly, nothing else changes, nothing needs a restart', () => {
    const limits = fc.record(
      {
        maxRecipients: fc.integer({ min: 1, max: 1000 }),
        maxClients: fc.integer({ min: 1, max: 1000 }),
        maxClientsPerIp: fc.integer({ min: 1, max: 1000 }),
        maxMessageSize: fc.integer({ min: 1, max: 2 ** 30 }),
        banner: fc.string({ minLength: 1, maxLength: 20 }),
        bareLineEndings: fc.constantFrom('reject', 'normalize'),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(limits, (smtp) => {
        const old = validateConfig(base);
        const next = validateConfig({ ...base, smtp: { ...base.smtp, ...smtp } });
        const plan = planReload(old, next);
        assert.deepEqual(plan.needsRestart, []);
        assert.deepEqual(plan.applied.sort(), changedPaths(old, next).sort());
        assert.ok(plan.applied.every((p) => RELOADABLE.includes(p)));
        assert.deepEqual(plan.effective, next);
      }),
      { numRuns: 200 },
    );
  });
});
