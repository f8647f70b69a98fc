import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requirePeer, tempDir } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

/**
 * WebDAV writes: a principal with `w` on a folder puts documents into it, and with `d` takes
 * them out (DELETE, MOVE), through cadaver, a stock WebDAV client; one without gets 405 with an
 * Allow header (never 401 for good credentials, which a file manager answers by asking for the
 * password again, in a loop).
 */
describe('WebDAV writes (cadaver)', () => {
  let pr: TestPostroom;
  let inbox: number;
  let archive: number;
  let closed: number;
  let clerkToken: string;
  let readToken: string;
  const tmp = tempDir('cadaver-');

  before(async () => {
    pr = await startTestPostroom({});
    const post = async (p: string, body: unknown) => {
      const res = await pr.api(p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(res.status, 201, await res.clone().text());
      return (await res.json()) as Record<string, any>;
    };
    const put = async (p: string, body: unknown) => assert.equal((await pr.api(p, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).status, 200);
    inbox = (await post('/api/v1/folders', { name: 'Inbox' })).id;
    archive = (await post('/api/v1/folders', { name: 'Archive' })).id;
    closed = (await post('/api/v1/folders', { name: 'Closed' })).id;
    await post('/api/v1/users', { name: 'clerk', role: 'viewer', password: 'a long enough password' });
    clerkToken = (await post('/api/v1/tokens', { name: 'dav', scope: 'write', user: 'clerk' })).token;
    readToken = (await post('/api/v1/tokens', { name: 'dav-read', scope: 'read', user: 'clerk' })).token;
    await put(`/api/v1/objects/${inbox}/acl/clerk`, { permissions: 'rwd' });
    await put(`/api/v1/objects/${archive}/acl/clerk`, { permissions: 'rw' });
    // Closed: clerk may read (every token reads), not write.
  });
  after(async () => {
    await pr?.close();
    tmp.cleanup();
  });

  const basic = (token: string) => `Basic ${Buffer.from(`clerk:${token}`).toString('base64')}`;
  const dav = (p: string, method: string, auth: string | null, init: { body?: string; headers?: Record<string, string> } = {}) =>
    fetch(`${pr.baseUrl}${p}`, { method, body: init.body, headers: { ...(auth ? { authorization: auth } : {}), ...(init.headers ?? {}) } });
  const docs = async (folder: number) =>
    ((await (await pr.api(`/api/v1/documents?folder=${folder}`)).json()) as { items: { id: number; name: string; size: number; contentType: string }[] }).items;

  it('a PUT without write access is 405 with Allow, under Basic and Bearer alike; without credentials 401', async () => {
    for (const auth of [basic(clerkToken), `Bearer ${clerkToken}`, basic(readToken), `Bearer ${readToken}`]) {
      const res = await dav(`/dav/${closed}/note.txt`, 'PUT', auth, { body: 'hello', headers: { 'content-type': 'text/plain' } });
      assert.equal(res.status, 405, `${auth.slice(0, 12)}: ${await res.text()}`);
      assert.equal(res.headers.get('allow'), 'OPTIONS, GET, HEAD, PROPFIND');
      assert.equal(res.headers.get('www-authenticate'), null);
    }
    // Where it has `w`, a read-scope token still writes nothing.
    assert.equal((await dav(`/dav/${inbox}/note.txt`, 'PUT', basic(readToken), { body: 'x' })).status, 405);
    const anon = await dav(`/dav/${inbox}/note.txt`, 'PUT', null, { body: 'hello' });
    assert.equal(anon.status, 401);
    assert.match(anon.headers.get('www-authenticate') ?? '', /^Basic /);
    assert.deepEqual(await docs(closed), []);
    assert.deepEqual(await docs(inbox), []);
  });

  it('PUT creates (201) then replaces (204) a document; MOVE and DELETE need d; COPY into a folder needs w there', async () => {
    const auth = basic(clerkToken);
    assert.equal((await dav(`/dav/${inbox}/a.txt`, 'PUT', auth, { body: 'one', headers: { 'content-type': 'text/plain' } })).status, 201);
    assert.equal((await dav(`/dav/${inbox}/a.txt`, 'PUT', auth, { body: 'one two', headers: { 'content-type': 'text/plain' } })).status, 204);
    const [a] = await docs(inbox);
    assert.deepEqual([a.name, a.size, a.contentType], ['a.txt', 7, 'text/plain']);
    // Into a missing folder: 409 (RFC 4918 §9.7.1).
    assert.equal((await dav(`/dav/${inbox}/nosuch/b.txt`, 'PUT', auth, { body: 'x' })).status, 409);
    // Archive has rw, not d: copying in is allowed, moving out or deleting there is not.
    assert.equal((await dav(`/dav/${inbox}/a.txt`, 'COPY', auth, { headers: { destination: `${pr.baseUrl}/dav/${archive}/a-copy.txt` } })).status, 201);
    assert.equal((await dav(`/dav/${archive}/a-copy.txt`, 'DELETE', auth)).status, 405);
    assert.equal((await dav(`/dav/${archive}/a-copy.txt`, 'MOVE', auth, { headers: { destination: `/dav/${inbox}/back.txt` } })).status, 405);
    // Overwrite: F onto an existing name is 412; a move into Closed (no w) is 405.
    assert.equal((await dav(`/dav/${inbox}/a.txt`, 'COPY', auth, { headers: { destination: `/dav/${archive}/a-copy.txt`, overwrite: 'F' } })).status, 412);
    assert.equal((await dav(`/dav/${inbox}/a.txt`, 'MOVE', auth, { headers: { destination: `/dav/${closed}/a.txt` } })).status, 405);
    const copy = (await docs(archive))[0];
    const bytes = await (await pr.api(`/api/v1/documents/${copy.id}/content`)).text();
    assert.equal(bytes, 'one two');
    assert.equal((await dav(`/dav/${inbox}/a.txt`, 'DELETE', auth)).status, 204);
    assert.deepEqual(await docs(inbox), []);
  });

  it('cadaver puts, copies, moves and deletes where the user may, and gets 405 (no password prompt) where not', async (t) => {
    if (!requirePeer(t, 'cadaver')) return;
    // cadaver takes its credentials from ~/.netrc (the token as the password, as for any file manager).
    const home = tmp.dir;
    const host = new URL(pr.baseUrl).hostname;
    writeFileSync(path.join(home, '.netrc'), `machine ${host}\nlogin clerk\npassword ${clerkToken}\n`);
    chmodSync(path.join(home, '.netrc'), 0o600);
    const local = path.join(home, 'report.pdf');
    writeFileSync(local, '%PDF-1.4 quarterly report\n%%EOF\n');
    const commands = [
      `cd /dav/${inbox}/`,
      'put report.pdf',
      `copy report.pdf /dav/${archive}/report-copy.pdf`,
      'move report.pdf q3.pdf',
      'mkcol 2026',
      'put report.pdf 2026/again.pdf',
      'delete 2026/again.pdf',
      `put report.pdf /dav/${closed}/refused.pdf`,
      'ls',
      'quit',
    ];
    const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
      const child = spawn('cadaver', [`${pr.baseUrl}/dav/`], { cwd: home, env: { ...process.env, HOME: home }, stdio: ['pipe', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (d) => (text += d));
      child.stderr.on('data', (d) => (text += d));
      child.on('close', (code) => resolve({ code, text }));
      child.stdin.end(`${commands.join('\n')}\n`);
    });
    assert.equal(out.code, 0, out.text);
    assert.doesNotMatch(out.text, /Username:|Password:|Authentication required/i, out.text);
    assert.match(out.text, /405 Method Not Allowed/, out.text);
    const inboxDocs = await docs(inbox);
    assert.deepEqual(inboxDocs.map((d) => d.name), ['q3.pdf'], out.text);
    assert.equal(inboxDocs[0].contentType === 'application/pdf' || inboxDocs[0].contentType === 'application/octet-stream', true);
    assert.deepEqual((await docs(archive)).map((d) => d.name).sort(), ['a-copy.txt', 'report-copy.pdf']);
    assert.deepEqual(await docs(closed), []);
    const sub = ((await (await pr.api(`/api/v1/folders?parent=${inbox}`)).json()) as { items: { id: number; name: string }[] }).items;
    assert.deepEqual(sub.map((f) => f.name), ['2026']);
    assert.deepEqual(await docs(sub[0].id), [], 'put then deleted');
    const got = await (await pr.api(`/api/v1/documents/${inboxDocs[0].id}/content`)).text();
    assert.equal(got, '%PDF-1.4 quarterly report\n%%EOF\n');
    // Every write is in the audit log under the user.
    const audit = ((await (await pr.api('/api/v1/audit?limit=100')).json()) as { items: { actor: string; action: string }[] }).items;
    for (const action of ['webdav.put', 'webdav.copy', 'webdav.move', 'webdav.mkcol', 'webdav.delete']) {
      assert.ok(audit.some((e) => e.actor === 'clerk' && e.action === action), `${action} audited: ${JSON.stringify(audit.slice(0, 5))}`);
    }
  });
});
