import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

const TOKEN = 'test-token-0123456789abcdef';

describe('HTTP API: bearer token', () => {
  let pr: TestPostroom;
  before(async () => {
    pr = await startTestPostroom({ http: { apiToken: TOKEN } });
  });
  after(() => pr?.close());

  const get = (path: string, authorization?: string, method = 'GET') =>
    fetch(pr.baseUrl + path, { method, headers: authorization === undefined ? {} : { authorization } });

  async function assertUnauthorised(res: Response, what: string): Promise<void> {
    assert.equal(res.status, 401, what);
    assert.equal(res.headers.get('content-type'), 'application/problem+json', what);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="postroom"', what);
    if (res.headers.get('content-length') === '0') return; // HEAD
    const p = (await res.json()) as Record<string, unknown>;
    assert.equal(p.code, 'UNAUTHORISED', what);
    assert.equal(p.status, 401, what);
    assert.equal(p.type, 'urn:postroom:error:unauthorised', what);
  }

  test('refuses every API route without a token with 401 problem JSON', async () => {
    for (const path of ['/api/v1/messages', '/api/v1/messages/0000000000zzzzzzzzzzzzzzzz/raw', '/api/v1/openapi.json', '/metrics']) {
      await assertUnauthorised(await get(path), path);
    }
  });

  test('refuses a URL that matches no route without a token (no probing for routes)', async () => {
    await assertUnauthorised(await get('/api/v1/secret-admin'), 'unknown route');
    await assertUnauthorised(await get('/nothing-here'), 'unknown top-level route');
  });

  test('refuses wrong tokens: different, a prefix, longer, empty', async () => {
    for (const token of ['x'.repeat(TOKEN.length), TOKEN.slice(0, -1), `${TOKEN}0`, TOKEN.toUpperCase(), '']) {
      await assertUnauthorised(await get('/api/v1/messages', `Bearer ${token}`), `token '${token}'`);
    }
  });

  test('refuses other schemes and tokens outside the Authorization header', async () => {
    await assertUnauthorised(await get('/api/v1/messages', `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`), 'Basic');
    await assertUnauthorised(await get('/api/v1/messages', TOKEN), 'bare token');
    await assertUnauthorised(await get(`/api/v1/messages?access_token=${TOKEN}`), 'query token');
  });

  test('refuses HEAD without a token too', async () => {
    const res = await get('/api/v1/messages', undefined, 'HEAD');
    assert.equal(res.status, 401);
  });

  test('accepts the right token, whatever the case of the scheme name (RFC 9110 §11.1)', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const res = await get('/api/v1/messages', `${scheme} ${TOKEN}`);
      assert.equal(res.status, 200, scheme);
      assert.deepEqual(await res.json(), { items: [], nextCursor: null });
    }
    assert.equal((await get('/metrics', `Bearer ${TOKEN}`)).status, 200);
    assert.equal((await get('/api/v1/openapi.json', `Bearer ${TOKEN}`)).status, 200);
  });

  test('lets /healthz through without a token', async () => {
    const res = await get('/healthz');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok', db: 'ok' });
  });

  test('tells a wrong token from a missing one in the detail, never echoing the token', async () => {
    const missing = (await (await get('/api/v1/messages')).json()) as { detail: string };
    const wrong = (await (await get('/api/v1/messages', 'Bearer not-the-token-at-all')).json()) as { detail: string };
    assert.match(missing.detail, /Missing/);
    assert.match(wrong.detail, /Invalid/);
    assert.doesNotMatch(JSON.stringify(wrong), /not-the-token-at-all|0123456789abcdef/);
  });
});
