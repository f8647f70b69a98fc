import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testBackend, waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

const MSG = 'From: alice@example.org\r\nTo: x@in.test\r\nSubject: routed\r\nMessage-ID: <MID@example.org>\r\n\r\nhello\r\n';

/** Keep a message for `rcpt` through POST /api/v1/inbound; its id. */
async function send(pr: TestPostroom, rcpt: string, n: number): Promise<{ status: number; id?: string; body: any }> {
  const res = await pr.api(`/api/v1/inbound?recipient=${encodeURIComponent(rcpt)}&sender=alice@example.org`, {
    method: 'POST',
    headers: { 'content-type': 'message/rfc822' },
    body: MSG.replace('MID', `m${n}-${Date.now()}`),
  });
  const body = (await res.json()) as any;
  return { status: res.status, id: body.id, body };
}

/** The routes that planned the message's deliveries, once planned (or the no-route mark). */
async function routedBy(pr: TestPostroom, id: string): Promise<string[] | 'no route'> {
  return waitFor(async () => {
    const d = await pr.db.kysely.selectFrom('deliveries').select('route').where('message', '=', id).execute();
    if (d.length) return d.map((r) => r.route).sort();
    const m = await pr.db.kysely.selectFrom('messages').select('error').where('id', '=', id).executeTakeFirst();
    return m?.error?.startsWith('no route') ? ('no route' as const) : undefined;
  }, `message ${id} to be planned`);
}

const json = (body: unknown, extra: Record<string, string> = {}) => ({
  headers: { 'content-type': 'application/json', ...extra },
  body: JSON.stringify(body),
});

describe(`routes managed through /api/v1/routes [${testBackend()}]`, () => {
  let pr: TestPostroom;
  before(async () => {
    pr = await startTestPostroom({
      smtp: { domains: ['in.test'] },
      routes: [{ name: 'file-route', match: { recipient: 'file@in.test' }, deliver: [{ discard: null }] }],
    });
  });
  after(async () => {
    await pr?.close();
  });

  it('a route created through the API with its own retention limits starts retention', async () => {
    const last = async () => Number(/^postroom_retention_last_run_timestamp_seconds (\S+)$/m.exec(await pr.metrics.registry.metrics())?.[1] ?? 0);
    assert.equal(await last(), 0, 'no limit anywhere yet: retention never ran');
    const res = await pr.api('/api/v1/routes', { method: 'POST', ...json({ name: 'api-kept', match: { recipient: 'kept@in.test' }, deliver: [{ discard: {} }], retention: { maxAge: '30d' } }) });
    assert.equal(res.status, 201, await res.clone().text());
    await waitFor(async () => (await last()) > 0, 'a retention run once the API route set a limit');
    assert.equal((await pr.api('/api/v1/routes/api-kept', { method: 'DELETE' })).status, 204);
  });

  it('create, update and delete change how the next message is routed', async () => {
    // Before: only the file route; api@ has no route (refused at the door).
    assert.equal((await send(pr, 'api@in.test', 1)).status, 422);

    let res = await pr.api('/api/v1/routes', { method: 'POST', ...json({ name: 'api-one', match: { recipient: 'api@in.test' }, deliver: [{ discard: {} }] }) });
    assert.equal(res.status, 201, await res.clone().text());
    assert.deepEqual(await res.json(), { name: 'api-one', source: 'api', version: 1 });
    const first = await send(pr, 'api@in.test', 2);
    assert.equal(first.status, 202, JSON.stringify(first.body));
    assert.deepEqual(await routedBy(pr, first.id!), ['api-one']);

    // Update: the route now takes other@ instead.
    res = await pr.api('/api/v1/routes/api-one', { method: 'PUT', ...json({ match: { recipient: 'other@in.test' }, deliver: [{ discard: {} }] }, { 'if-match': '"1"' }) });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(((await res.json()) as any).version, 2);
    assert.equal((await send(pr, 'api@in.test', 3)).status, 422);
    const second = await send(pr, 'other@in.test', 4);
    assert.deepEqual(await routedBy(pr, second.id!), ['api-one']);

    // A stale If-Match is refused: no lost update.
    res = await pr.api('/api/v1/routes/api-one', { method: 'PUT', ...json({ match: { recipient: 'x@in.test' }, deliver: [{ discard: {} }] }, { 'if-match': '"1"' }) });
    assert.equal(res.status, 412);

    const listed = (await (await pr.api('/api/v1/routes')).json()) as any;
    assert.deepEqual(
      listed.items.map((r: any) => [r.name, r.source, r.version]),
      [
        ['file-route', 'file', null],
        ['api-one', 'api', 2],
      ],
    );

    res = await pr.api('/api/v1/routes/api-one', { method: 'DELETE' });
    assert.equal(res.status, 204);
    assert.equal((await send(pr, 'other@in.test', 5)).status, 422);
  });

  it('history lists every version with who made it and when; each change is in the audit log', async () => {
    const res = await pr.api('/api/v1/routes/api-one/versions');
    assert.equal(res.status, 200);
    const { items } = (await res.json()) as any;
    assert.deepEqual(
      items.map((v: any) => [v.version, v.op, v.actor]),
      [
        [3, 'delete', 'api-token'],
        [2, 'update', 'api-token'],
        [1, 'create', 'api-token'],
      ],
    );
    assert.deepEqual(items[1].definition.match, { recipient: 'other@in.test' });
    assert.ok(items.every((v: any) => !Number.isNaN(Date.parse(v.at))));
    const audit = (await (await pr.api('/api/v1/audit?limit=50')).json()) as any;
    const actions = audit.items.filter((e: any) => e.object === 'route:api-one').map((e: any) => e.action);
    assert.deepEqual(actions, ['route.delete', 'route.update', 'route.create']);
  });

  it('an invalid route is refused with 422 problem+json naming the key path', async () => {
    const res = await pr.api('/api/v1/routes', { method: 'POST', ...json({ name: 'bad', match: { recipient: 'bad@in.test' }, deliver: [{ spool: { format: ['id'] } }] }) });
    assert.equal(res.status, 422);
    assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
    const p = (await res.json()) as any;
    assert.equal(p.code, 'ROUTE_INVALID');
    assert.match(p.detail, /deliver\[0\]\.spool\.dir/);
    const unknownKey = await pr.api('/api/v1/routes', { method: 'POST', ...json({ name: 'bad', match: { recipent: 'x@in.test' }, deliver: [{ discard: {} }] }) });
    assert.equal(unknownKey.status, 422);
    assert.match(((await unknownKey.json()) as any).detail, /match\.recipent: unknown key/);
    assert.equal((await pr.api('/api/v1/routes/bad/versions')).status, 404);
  });

  it('file routes are read-only through the API: 409 problem+json that says where to change them', async () => {
    const put = await pr.api('/api/v1/routes/file-route', { method: 'PUT', ...json({ match: { recipient: 'y@in.test' }, deliver: [{ discard: {} }] }) });
    assert.equal(put.status, 409);
    assert.match(put.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.match(((await put.json()) as any).detail, /config file.*read-only/);
    assert.equal((await pr.api('/api/v1/routes/file-route', { method: 'DELETE' })).status, 409);
    const post = await pr.api('/api/v1/routes', { method: 'POST', ...json({ name: 'file-route', match: { recipient: 'z@in.test' }, deliver: [{ discard: {} }] }) });
    assert.equal(post.status, 409);
    // The file route still routes.
    const kept = await send(pr, 'file@in.test', 6);
    assert.deepEqual(await routedBy(pr, kept.id!), ['file-route']);
  });

  it('API routes are tried after the file routes, whatever their priority', async () => {
    const res = await pr.api('/api/v1/routes', { method: 'POST', ...json({ name: 'eager', priority: 1, match: { recipient: '*@in.test' }, deliver: [{ discard: {} }] }) });
    assert.equal(res.status, 201);
    const kept = await send(pr, 'file@in.test', 7);
    assert.deepEqual(await routedBy(pr, kept.id!), ['file-route']);
    const other = await send(pr, 'anyone@in.test', 8);
    assert.deepEqual(await routedBy(pr, other.id!), ['eager']);
    // The route tester (a static path beside /routes/{name}) sees the API's routes too.
    const tested = (await (await pr.api('/api/v1/routes/test?recipient=anyone@in.test')).json()) as any;
    assert.deepEqual(tested.recipients[0].routes.map((r: any) => r.route), ['eager']);
    assert.equal((await pr.api('/api/v1/routes/eager', { method: 'DELETE' })).status, 204);
  });
});

describe('two nodes on one PostgreSQL: a route created on node A routes mail on node B', { skip: testBackend() !== 'postgres' && 'PostgreSQL only (POSTROOM_TEST_DATABASE_URL)' }, () => {
  let a: TestPostroom;
  let b: TestPostroom;
  before(async () => {
    a = await startTestPostroom({ smtp: { domains: ['in.test'] }, store: { routesPollInterval: '200ms' } });
    b = await startTestPostroom({ smtp: { domains: ['in.test'] }, store: { database: a.config.store.database, routesPollInterval: '200ms' } });
  });
  after(async () => {
    await b?.close();
    await a?.close();
  });

  it('node B applies the route at its next poll and plans its mail by it', async () => {
    const res = await a.api('/api/v1/routes', { method: 'POST', ...json({ name: 'shared', match: { recipient: 'shared@in.test' }, deliver: [{ discard: {} }] }) });
    assert.equal(res.status, 201);
    await waitFor(async () => {
      const list = (await (await b.api('/api/v1/routes')).json()) as any;
      return list.items.some((r: any) => r.name === 'shared' && r.source === 'api' && r.version === 1) || undefined;
    }, 'node B to apply the route');
    const kept = await send(b, 'shared@in.test', 9);
    assert.equal(kept.status, 202, JSON.stringify(kept.body));
    assert.deepEqual(await routedBy(b, kept.id!), ['shared']);
  });
});
