import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call } from '../helpers/mail-accounts.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

/**
 * The HTTP statuses a client library branches on: 400 for a malformed request (an id that
 * cannot be one of ours), 404 for a well-formed one we do not have, 415 for a body of the wrong
 * media type, 409 for a request that clashes with what is stored. Each answer is problem JSON
 * with its code, and nothing is changed by a refused request.
 */
describe('API statuses: 400 malformed, 404 unknown, 415 media type, 409 conflict', () => {
  let pr: TestPostroom;
  before(async () => {
    pr = await startTestPostroom({ mail: { fetch: false } });
  });
  after(() => pr?.close());

  async function problem(res: Response, status: number, code: string, what: string) {
    const text = await res.text();
    assert.equal(res.status, status, `${what}: ${text}`);
    assert.equal(res.headers.get('content-type'), 'application/problem+json', what);
    const p = JSON.parse(text) as { code: string; status: number; detail: string };
    assert.equal(p.code, code, what);
    assert.equal(p.status, status, what);
    return p;
  }

  it('a malformed id is 400 INVALID_REQUEST naming the field; a well-formed unknown one is 404', async () => {
    for (const base of ['/api/v1/messages', '/api/v1/deliveries', '/api/v1/email/profiles', '/api/v1/email/accounts', '/api/v1/email/messages']) {
      for (const bad of ['abc', '1', 'not-an-id', '0000000000zzzzzzzzzzzzzzzi', 'dlv_xyz']) {
        const p = await problem(await pr.api(`${base}/${bad}`), 400, 'INVALID_REQUEST', `${base}/${bad}`);
        assert.match(p.detail, /^params\.id: not an id/, `${base}/${bad}`);
      }
      const unknown = base === '/api/v1/deliveries' ? `dlv_${'0'.repeat(32)}` : base.includes('/email/') && base !== '/api/v1/email/messages' ? 'mp_0000000000zzzzzzzzzzzzzzzz' : '0000000000zzzzzzzzzzzzzzzz';
      await problem(await pr.api(`${base}/${unknown}`), 404, 'NOT_FOUND', `${base}/${unknown}`);
    }
  });

  it('a text/plain body to a JSON route is 415 UNSUPPORTED_MEDIA_TYPE, and nothing is created', async () => {
    const body = JSON.stringify({ name: 'plain', protocol: 'imap', host: '127.0.0.1', port: 1, tls: 'none' });
    for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded', 'application/xml']) {
      const res = await pr.api('/api/v1/email/profiles', { method: 'POST', headers: { 'content-type': type }, body });
      const p = await problem(res, 415, 'UNSUPPORTED_MEDIA_TYPE', type);
      assert.match(p.detail, /application\/json/, type);
    }
    assert.deepEqual((await call(pr.api, 'GET', '/api/v1/email/profiles')).items, []);
    // The same body as JSON is taken: the refusal was the media type alone.
    await call(pr.api, 'POST', '/api/v1/email/profiles', JSON.parse(body), 201);
  });

  it('deleting a profile an account uses is 409 CONFLICT and keeps both; so is a name that is taken', async () => {
    const profile = await call(pr.api, 'POST', '/api/v1/email/profiles', { name: 'used', protocol: 'imap', host: '127.0.0.1', port: 1, tls: 'none' }, 201);
    const account = await call(pr.api, 'POST', '/api/v1/email/accounts', { profile: profile.id, name: 'acc', username: 'u', password: 'pw' }, 201);
    const p = await problem(await pr.api(`/api/v1/email/profiles/${profile.id}`, { method: 'DELETE' }), 409, 'CONFLICT', 'DELETE profile in use');
    assert.match(p.detail, /used by accounts/);
    await call(pr.api, 'GET', `/api/v1/email/profiles/${profile.id}`, undefined, 200);
    await call(pr.api, 'GET', `/api/v1/email/accounts/${account.id}`, undefined, 200);

    const json = { 'content-type': 'application/json' };
    await problem(
      await pr.api('/api/v1/email/profiles', { method: 'POST', headers: json, body: JSON.stringify({ name: 'used', protocol: 'pop3', host: '127.0.0.1', port: 1, tls: 'none' }) }),
      409,
      'CONFLICT',
      'a second profile named used',
    );
    await problem(
      await pr.api('/api/v1/email/accounts', { method: 'POST', headers: json, body: JSON.stringify({ profile: profile.id, name: 'acc', username: 'v', password: 'pw' }) }),
      409,
      'CONFLICT',
      'a second account named acc',
    );

    // Once the account is gone, the profile can go.
    await call(pr.api, 'DELETE', `/api/v1/email/accounts/${account.id}`, undefined, 200);
    await call(pr.api, 'DELETE', `/api/v1/email/profiles/${profile.id}`, undefined, 200);
  });
});
