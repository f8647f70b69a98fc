import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import { selfSignedCert } from '../fixtures/tls/self-signed.js';
import { tempDir, waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

const PASSWORD = 'correct horse battery';
// scrypt N=2^10 in tests: the cost is a parameter; production's 2^15 would make each sign-in ~100 ms here.
const signIn = { scryptCost: 10 } as const;

interface Signed {
  cookie: string;
  csrf: string;
}

/** Sign in over plain HTTP; the cookie (name=value) and CSRF token. */
async function login(pr: TestPostroom, name: string, password = PASSWORD, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${pr.baseUrl}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ name, password }) });
}

async function session(pr: TestPostroom, name: string): Promise<Signed> {
  const res = await login(pr, name);
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as { csrfToken: string };
  return { cookie: res.headers.get('set-cookie')!.split(';')[0]!, csrf: body.csrfToken };
}

/** A request as the console makes it: the cookie, and the CSRF header unless told otherwise. */
function asBrowser(pr: TestPostroom, s: Signed, path: string, init: { method?: string; body?: unknown; csrf?: string | null; headers?: Record<string, string> } = {}): Promise<Response> {
  const headers: Record<string, string> = { cookie: s.cookie, ...init.headers };
  if (init.csrf !== null) headers['x-csrf-token'] = init.csrf ?? s.csrf;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  return fetch(pr.baseUrl + path, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
}

const bearer = (pr: TestPostroom, token: string, path: string, method = 'GET', body?: unknown) =>
  fetch(pr.baseUrl + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

async function addUser(pr: TestPostroom, name: string, role: string): Promise<void> {
  const res = await pr.api('/api/v1/users', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, role, password: PASSWORD }) });
  assert.equal(res.status, 201, await res.text());
}

describe('users, sessions, roles, tokens and the audit log', () => {
  let pr: TestPostroom;
  let deliveryId: string;

  before(async () => {
    pr = await startTestPostroom({
      http: { signIn },
      delivery: { pollInterval: '50ms' },
      routes: [
        {
          name: 'nowhere',
          match: { recipient: 'hook@postroom.test' },
          // Port 9 (discard) on loopback refuses: the delivery dies after one attempt, ready to replay.
          deliver: [{ webhook: { url: 'http://127.0.0.1:9/in', allowPrivate: true } }],
          retry: { schedule: ['50ms'], maxAttempts: 1, jitter: 0 },
        },
      ],
    });
    for (const [name, role] of [['ada', 'admin'], ['otto', 'operator'], ['vera', 'viewer']] as const) await addUser(pr, name, role);
    const kept = await pr.api('/api/v1/inbound?recipient=hook@postroom.test&sender=a@example.org', {
      method: 'POST',
      headers: { 'content-type': 'message/rfc822' },
      body: 'From: a@example.org\r\nTo: hook@postroom.test\r\nSubject: replay me\r\nMessage-ID: <replay@example.org>\r\n\r\nbody\r\n',
    });
    assert.equal(kept.status, 202, await kept.text());
    deliveryId = await waitFor(async () => {
      const list = (await (await pr.api('/api/v1/deliveries?status=dead')).json()) as { items: { id: string }[] };
      return list.items[0]?.id;
    }, 'the delivery to fail');
  });
  after(() => pr?.close());

  it('signs in with a cookie that is HttpOnly, SameSite=Strict, Path=/ and (over plain HTTP) not Secure; GET /session says who', async () => {
    const res = await login(pr, 'vera');
    assert.equal(res.status, 200);
    const setCookie = res.headers.get('set-cookie')!;
    assert.match(setCookie, /^postroom_session=[A-Za-z0-9_-]{43}; /);
    const attrs = setCookie.split('; ').slice(1);
    assert.deepEqual(attrs, ['Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${12 * 3600}`]);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.user, 'vera');
    assert.equal(body.role, 'viewer');
    assert.match(String(body.csrfToken), /^[A-Za-z0-9_-]{43}$/);
    const who = await asBrowser(pr, { cookie: setCookie.split(';')[0]!, csrf: '' }, '/api/v1/session', { csrf: null });
    assert.equal(who.status, 200);
    assert.deepEqual(await who.json(), { kind: 'session', user: 'vera', role: 'viewer', scope: 'write', csrfToken: body.csrfToken, expiresAt: body.expiresAt });
  });

  it('refuses a wrong password, an unknown user and a disabled one with the same 401', async () => {
    await addUser(pr, 'gone', 'viewer');
    assert.equal((await pr.api('/api/v1/users/gone', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ disabled: true }) })).status, 200);
    const answers = [];
    for (const [name, pw] of [['vera', 'wrong password'], ['nobody-here', PASSWORD], ['gone', PASSWORD]] as const) {
      const res = await login(pr, name, pw);
      assert.equal(res.status, 401, name);
      assert.equal(res.headers.get('set-cookie'), null, name);
      const { instance: _i, ...p } = (await res.json()) as Record<string, unknown>;
      answers.push(p);
    }
    assert.deepEqual(answers[1], answers[0]);
    assert.deepEqual(answers[2], answers[0]);
    assert.equal(answers[0]!.detail, 'Wrong user name or password');
  });

  it('signs out: the session ends, the cookie is cleared, and the old cookie opens nothing', async () => {
    const s = await session(pr, 'vera');
    const out = await asBrowser(pr, s, '/api/v1/session', { method: 'DELETE' });
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie')!, /^postroom_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0$/);
    const after = await asBrowser(pr, s, '/api/v1/messages');
    assert.equal(after.status, 401);
    assert.equal(((await after.json()) as { code: string }).code, 'UNAUTHORISED');
  });

  it('refuses a state-changing cookie request without the CSRF token (exact reply), or with a wrong one; accepts it with the token', async () => {
    const s = await session(pr, 'ada');
    const body = { name: 'csrf-made', role: 'viewer', password: PASSWORD };
    const without = await asBrowser(pr, s, '/api/v1/users', { method: 'POST', body, csrf: null });
    assert.equal(without.status, 403);
    assert.equal(without.headers.get('content-type'), 'application/problem+json');
    assert.deepEqual(await without.json(), {
      type: 'urn:postroom:error:forbidden',
      title: 'FORBIDDEN',
      status: 403,
      detail: "CSRF token missing or wrong: send the session's csrfToken in the x-csrf-token header (or the _csrf form field)",
      code: 'FORBIDDEN',
      enhancedStatus: '5.7.1',
      disposition: 'permanent',
      instance: '/api/v1/users',
    });
    assert.equal((await asBrowser(pr, s, '/api/v1/users', { method: 'POST', body, csrf: 'x'.repeat(43) })).status, 403);
    // Nothing was made by the refused requests.
    assert.equal((await pr.api('/api/v1/users/csrf-made', { method: 'DELETE' })).status, 404);
    const ok = await asBrowser(pr, s, '/api/v1/users', { method: 'POST', body });
    assert.equal(ok.status, 201, await ok.clone().text());
    // A bearer request carries no ambient credential: no CSRF token needed.
    assert.equal((await pr.api('/api/v1/users/csrf-made', { method: 'DELETE' })).status, 204);
  });

  it('refuses a cookie request from another origin (Origin or Sec-Fetch-Site), even with the CSRF token', async () => {
    const s = await session(pr, 'ada');
    const body = { name: 'cross', role: 'viewer', password: PASSWORD };
    const evil = await asBrowser(pr, s, '/api/v1/users', { method: 'POST', body, headers: { origin: 'https://evil.example' } });
    assert.equal(evil.status, 403);
    assert.equal(((await evil.json()) as { detail: string }).detail, 'cross-site request refused (Origin https://evil.example is not this site)');
    const site = await asBrowser(pr, s, '/api/v1/users', { method: 'POST', body, headers: { 'sec-fetch-site': 'cross-site' } });
    assert.equal(site.status, 403);
    assert.equal(((await site.json()) as { detail: string }).detail, 'cross-site request refused (Sec-Fetch-Site: cross-site)');
    // A cross-site sign-in is refused too (login CSRF).
    assert.equal((await login(pr, 'ada', PASSWORD, { origin: 'https://evil.example' })).status, 403);
    const same = await asBrowser(pr, s, '/api/v1/users', { method: 'POST', body, headers: { origin: pr.baseUrl, 'sec-fetch-site': 'same-origin' } });
    assert.equal(same.status, 201);
  });

  it('a viewer reads but gets 403 on a replay; an operator replays; neither reaches the admin-only routes', async () => {
    const vera = await session(pr, 'vera');
    assert.equal((await asBrowser(pr, vera, '/api/v1/messages')).status, 200);
    const refused = await asBrowser(pr, vera, `/api/v1/deliveries/${deliveryId}/retry`, { method: 'POST' });
    assert.equal(refused.status, 403);
    const p = (await refused.json()) as { code: string; detail: string };
    assert.equal(p.code, 'FORBIDDEN');
    assert.equal(p.detail, 'needs role operator; your role is viewer');

    const otto = await session(pr, 'otto');
    const replay = await asBrowser(pr, otto, `/api/v1/deliveries/${deliveryId}/retry`, { method: 'POST' });
    assert.equal(replay.status, 200, await replay.clone().text());
    assert.equal(((await replay.json()) as { status: string }).status, 'pending');

    for (const s of [vera, otto]) {
      for (const [method, path] of [['GET', '/api/v1/users'], ['GET', '/api/v1/audit'], ['POST', '/api/v1/users'], ['DELETE', '/api/v1/users/ada']] as const) {
        const res = await asBrowser(pr, s, path, { method, ...(method === 'POST' ? { body: { name: 'x1', role: 'admin', password: PASSWORD } } : {}) });
        assert.equal(res.status, 403, `${method} ${path}`);
      }
      // An unmarked state-changing route is admin-only by default.
      assert.equal((await asBrowser(pr, s, '/api/v1/groups', { method: 'POST', body: {} })).status, 403);
    }
    const ada = await session(pr, 'ada');
    assert.equal((await asBrowser(pr, ada, '/api/v1/users')).status, 200);
    assert.equal((await asBrowser(pr, ada, '/api/v1/audit')).status, 200);
  });

  it('per-user tokens: shown once, read scope has viewer powers, write scope the user\'s role; a token cannot make tokens; revoked opens nothing', async () => {
    const otto = await session(pr, 'otto');
    const make = async (scope: string) => {
      const res = await asBrowser(pr, otto, '/api/v1/tokens', { method: 'POST', body: { name: `${scope} script`, scope } });
      assert.equal(res.status, 201, await res.clone().text());
      return (await res.json()) as { id: string; token: string; scope: string; user: string };
    };
    const read = await make('read');
    const write = await make('write');
    assert.match(read.token, /^prt_[A-Za-z0-9_-]{43}$/);
    assert.equal(read.user, 'otto');

    const listed = (await (await asBrowser(pr, otto, '/api/v1/tokens')).json()) as { items: Record<string, unknown>[] };
    assert.deepEqual(listed.items.map((t) => t.id).sort(), [read.id, write.id].sort());
    assert.ok(listed.items.every((t) => !('token' in t)), 'the value is never shown again');

    assert.equal((await bearer(pr, read.token, '/api/v1/messages')).status, 200);
    const scoped = await bearer(pr, read.token, `/api/v1/deliveries/${deliveryId}/retry`, 'POST');
    assert.equal(scoped.status, 403);
    assert.equal(((await scoped.json()) as { detail: string }).detail, 'needs role operator; this token has read scope');
    assert.equal((await bearer(pr, write.token, `/api/v1/deliveries/${deliveryId}/retry`, 'POST')).status, 200);
    assert.equal((await bearer(pr, write.token, '/api/v1/users')).status, 403, 'write scope is still only the operator role');
    assert.equal((await bearer(pr, read.token, '/api/v1/tokens', 'POST', { name: 'escalate', scope: 'write' })).status, 403);
    assert.equal((await bearer(pr, write.token, '/api/v1/tokens', 'POST', { name: 'another', scope: 'write' })).status, 403);

    // Someone else's token: not found to a non-admin; an admin sees and revokes any.
    const vera = await session(pr, 'vera');
    assert.equal((await asBrowser(pr, vera, `/api/v1/tokens/${read.id}`, { method: 'DELETE' })).status, 404);
    const all = (await (await pr.api('/api/v1/tokens')).json()) as { items: { id: string }[] };
    assert.ok(all.items.some((t) => t.id === read.id));

    // WebDAV (read-only) takes a user token too, as the Basic password a file manager sends.
    const dav = () => fetch(`${pr.baseUrl}/dav/`, { method: 'PROPFIND', headers: { depth: '0', authorization: `Basic ${Buffer.from(`otto:${read.token}`).toString('base64')}` } });
    assert.equal((await dav()).status, 207);

    assert.equal((await asBrowser(pr, otto, `/api/v1/tokens/${read.id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await dav()).status, 401);
    const revoked = await bearer(pr, read.token, '/api/v1/messages');
    assert.equal(revoked.status, 401);
    assert.equal(((await revoked.json()) as { detail: string }).detail, 'Invalid API token');
    assert.equal((await pr.api(`/api/v1/tokens/${write.id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await bearer(pr, write.token, '/api/v1/messages')).status, 401);
  });

  it('POSTROOM_API_TOKEN is still admin: users, tokens for a named user, the audit log', async () => {
    assert.equal((await pr.api('/api/v1/users')).status, 200);
    const who = (await (await pr.api('/api/v1/session')).json()) as Record<string, unknown>;
    assert.deepEqual(who, { kind: 'admin-token', user: null, role: 'admin', scope: 'write', csrfToken: null, expiresAt: null });
    const noUser = await pr.api('/api/v1/tokens', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x', scope: 'read' }) });
    assert.equal(noUser.status, 400);
    const forVera = await pr.api('/api/v1/tokens', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'for vera', scope: 'write', user: 'vera' }) });
    assert.equal(forVera.status, 201);
    const t = (await forVera.json()) as { token: string };
    // A write token of a viewer is still a viewer.
    assert.equal((await bearer(pr, t.token, `/api/v1/deliveries/${deliveryId}/retry`, 'POST')).status, 403);
  });

  it('keeps an enabled admin: the last one cannot be demoted, disabled or deleted', async () => {
    const patch = (name: string, body: unknown) => pr.api(`/api/v1/users/${name}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    for (const res of [await patch('ada', { role: 'operator' }), await patch('ada', { disabled: true }), await pr.api('/api/v1/users/ada', { method: 'DELETE' })]) {
      assert.equal(res.status, 409);
      assert.equal(((await res.json()) as { detail: string }).detail, "'ada' is the last enabled admin; make another admin first");
    }
    assert.equal((await patch('ada', { role: 'admin', password: 'still the same' })).status, 200, 'a change that keeps her admin is fine');
    assert.equal((await patch('ada', { password: PASSWORD })).status, 200);
  });

  it('writes an audit row for each state-changing action (who, what, object, ip), newest first, filterable', async () => {
    const page = (await (await pr.api('/api/v1/audit?actor=otto&action=delivery.retry')).json()) as { items: Record<string, unknown>[] };
    assert.equal(page.items.length, 2, 'one by session, one by write token');
    const [newest, first] = page.items as { id: number; at: string; object: string; ip: string; detail: Record<string, unknown> }[];
    assert.ok(newest!.id > first!.id);
    assert.equal(first!.object, `/api/v1/deliveries/${deliveryId}/retry`);
    assert.equal(first!.ip, '127.0.0.1');
    assert.ok(typeof newest!.detail.token === 'string', 'the token used is named');

    const created = (await (await pr.api('/api/v1/audit?action=user.create&limit=1')).json()) as { items: Record<string, unknown>[]; nextCursor: string };
    assert.equal(created.items.length, 1);
    assert.ok(created.nextCursor);
    const next = (await (await pr.api(`/api/v1/audit?action=user.create&limit=100&cursor=${created.nextCursor}`)).json()) as { items: Record<string, unknown>[] };
    const creators = new Set([...created.items, ...next.items].map((e) => e.actor));
    assert.deepEqual([...creators].sort(), ['ada', 'api-token']);
    assert.ok(next.items.some((e) => e.object === 'user:otto' && (e.detail as { role: string }).role === 'operator'));

    const signIns = (await (await pr.api('/api/v1/audit?action=session.create&actor=vera')).json()) as { items: unknown[] };
    assert.ok(signIns.items.length >= 2);
    // Refused requests and reads are not actions.
    const all = (await (await pr.api('/api/v1/audit?limit=500')).json()) as { items: { action: string; detail: { status: number } }[] };
    assert.ok(all.items.every((e) => e.detail.status < 400));
    assert.ok(!all.items.some((e) => e.action.startsWith('get')));
    // Nothing secret in the log.
    assert.doesNotMatch(JSON.stringify(all), /correct horse|prt_/);
    const since = (await (await pr.api(`/api/v1/audit?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).json()) as { items: unknown[] };
    assert.deepEqual(since.items, []);
  });

  it('limits failed sign-ins per client IP: 429 with Retry-After, even for the right password, before any password is checked', async () => {
    // This IP already failed a few times in the tests above: the 11th failure of the minute at the latest is refused.
    let tries = 0;
    for (; tries < 11; tries++) {
      const res = await login(pr, 'vera', `wrong ${tries}`);
      if (res.status === 429) break;
      assert.equal(res.status, 401, `try ${tries}`);
    }
    assert.ok(tries >= 1 && tries <= 10, `refused after ${tries} more failures`);
    const limited = await login(pr, 'ada');
    assert.equal(limited.status, 429);
    const retry = Number(limited.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= 60, String(retry));
    const p = (await limited.json()) as { code: string };
    assert.equal(p.code, 'TOO_MANY_REQUESTS');
    assert.equal(limited.headers.get('set-cookie'), null);
  });
});

/** GET or POST over HTTPS to a self-signed listener; the test is about the cookie, not the certificate. */
function httpsRequest(url: string, method: string, headers: Record<string, string>, body?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, rejectUnauthorized: false }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('sessions over a TLS listener, with a short idle timeout', () => {
  let pr: TestPostroom;
  let certDir: { dir: string; cleanup(): void };
  let base: string;

  before(async () => {
    certDir = tempDir('postroom-http-tls-');
    const tls = selfSignedCert(certDir.dir, 'localhost');
    pr = await startTestPostroom({ http: { tls, signIn, sessions: { idleTimeout: '1s', maxAge: '1h' } } });
    base = `https://127.0.0.1:${pr.httpPort}`;
    const res = await httpsRequest(`${base}/api/v1/users`, 'POST', { authorization: `Bearer ${pr.apiToken}`, 'content-type': 'application/json' }, JSON.stringify({ name: 'tess', role: 'viewer', password: PASSWORD }));
    assert.equal(res.status, 201, res.body);
  });
  after(async () => {
    await pr?.close();
    certDir?.cleanup();
  });

  const signInTls = async () => {
    const res = await httpsRequest(`${base}/api/v1/session`, 'POST', { 'content-type': 'application/json' }, JSON.stringify({ name: 'tess', password: PASSWORD }));
    assert.equal(res.status, 200, res.body);
    return String(res.headers['set-cookie']);
  };

  it('marks the session cookie Secure', async () => {
    const setCookie = await signInTls();
    assert.deepEqual(setCookie.split('; ').slice(1), ['Path=/', 'HttpOnly', 'SameSite=Strict', 'Max-Age=3600', 'Secure']);
  });

  it('keeps a session alive while it is used, and ends it after the idle timeout (401, cookie cleared)', async () => {
    const cookie = (await signInTls()).split(';')[0]!;
    const get = () => httpsRequest(`${base}/api/v1/session`, 'GET', { cookie });
    // Used every 400 ms for 2 s: longer than the 1 s idle timeout in all, never idle for 1 s.
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 400));
      assert.equal((await get()).status, 200, `use ${i}`);
    }
    await new Promise((r) => setTimeout(r, 1_200));
    const idle = await get();
    assert.equal(idle.status, 401);
    assert.equal(JSON.parse(idle.body).detail, 'Session expired or signed out; sign in again');
    assert.match(String(idle.headers['set-cookie']), /^postroom_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0; Secure$/);
    // Gone for good: the row was deleted, not just refused.
    assert.equal((await get()).status, 401);
  });

  it('counts a burst of parallel sign-ins as it arrives: no more than the limit get to a password check', async () => {
    const tries = await Promise.all(
      Array.from({ length: 16 }, (_, i) => httpsRequest(`${base}/api/v1/session`, 'POST', { 'content-type': 'application/json' }, JSON.stringify({ name: 'tess', password: `wrong ${i}` }))),
    );
    const statuses = tries.map((t) => t.status).sort();
    assert.equal(statuses.filter((s) => s === 401).length, 10, statuses.join(' '));
    assert.equal(statuses.filter((s) => s === 429).length, 6, statuses.join(' '));
  });
});
