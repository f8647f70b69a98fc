import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

/** The console's files: public (they hold no data), under the console's policy, and nothing else on disk. */
describe('console assets', () => {
  let pr: TestPostroom;
  before(async () => {
    pr = await startTestPostroom({ smtp: { enabled: false } });
  });
  after(() => pr?.close());

  it('serves the shell at / without a token, under a policy that allows only its own code', async () => {
    const res = await fetch(`${pr.baseUrl}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self';/);
    assert.match(csp, /style-src 'self';/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    const body = await res.text();
    assert.match(body, /<script type="module" src="\/console\/app\.js">/);
    assert.doesNotMatch(body, /https?:\/\//, 'no asset from another origin (no CDN)');
  });

  it('serves each module as JavaScript with an ETag, and answers 304 to it', async () => {
    const res = await fetch(`${pr.baseUrl}/console/html.js`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/javascript/);
    const etag = res.headers.get('etag')!;
    assert.ok(etag);
    const again = await fetch(`${pr.baseUrl}/console/html.js`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
  });

  it('serves nothing but the files it loaded: no paths, no other names', async () => {
    for (const p of ['/console/..%2fpackage.json', '/console/%2e%2e%2fserve.ts', '/console/serve.ts', '/console/index.html', '/console/nope.js']) {
      const res = await fetch(`${pr.baseUrl}${p}`);
      assert.equal(res.status, 404, p);
    }
  });

  it('the API still needs credentials: the console being public opens nothing else', async () => {
    assert.equal((await fetch(`${pr.baseUrl}/api/v1/messages`)).status, 401);
    assert.equal((await fetch(`${pr.baseUrl}/api/v1/messages/events`)).status, 401);
    assert.equal((await fetch(`${pr.baseUrl}/api/v1/routes/test?recipient=a@b`)).status, 401);
  });
});
