import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { requirePeer, waitFor } from '../helpers/env.js';
import { PDF, scanMessage } from '../helpers/objects.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

const run = promisify(execFile);

/** Folders, documents, ACLs, workflows, processes and WebDAV through the HTTP API. */
describe('objects through the HTTP API and WebDAV', () => {
  let pr: TestPostroom;
  let folderId: number;
  let docId: number;
  before(async () => {
    pr = await startTestPostroom({ objects: { prefix: 'ogo', domain: 'example.org' }, delivery: { pollInterval: '50ms' } });
  });
  after(() => pr.close());

  const json = async (res: Response, status = 200) => {
    const body = await res.text();
    assert.equal(res.status, status, body);
    return body ? JSON.parse(body) : undefined;
  };
  const send = (path: string, method: string, body: unknown) =>
    pr.api(path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  /** Keep a message as the SMTP ingress would (the same door), for `ogo+<id>@example.org`. */
  const mail = (to: string, raw: string) =>
    pr.intake.accept({ mailFrom: 'scanner@example.org', rcptTo: [to], ingress: 'smtp', clientIp: '127.0.0.1', receivedAt: new Date() }, [Buffer.from(raw)]);

  it('creates a folder with settings and shows its address', async () => {
    const f = await json(await send('/api/v1/folders', 'POST', { name: 'Invoices', properties: { collectMIMEType: 'application/pdf' } }), 201);
    assert.equal(f.kind, 'folder');
    assert.equal(f.address, `ogo+${f.id}@example.org`);
    assert.deepEqual(f.properties, { collectMIMEType: 'application/pdf' });
    folderId = f.id;
    const bad = await send('/api/v1/folders', 'POST', { name: 'x', properties: { collectMIMEType: 'not a type' } });
    assert.equal(bad.status, 400);
    assert.equal((await json(await pr.api(`/api/v1/objects/${folderId}`))).name, 'Invoices');
    assert.equal((await pr.api('/api/v1/folders/999999')).status, 404);
  });

  it('grants the network principal rw and lists the ACL', async () => {
    assert.deepEqual(await json(await send(`/api/v1/objects/${folderId}/acl/network`, 'PUT', { permissions: 'wr' })), { principal: 'network', permissions: 'rw' });
    assert.deepEqual((await json(await pr.api(`/api/v1/objects/${folderId}/acl`))).items, [{ principal: 'network', permissions: 'rw' }]);
    assert.equal((await send(`/api/v1/objects/${folderId}/acl/network`, 'PUT', { permissions: 'z' })).status, 400);
  });

  it('finds a filed document by {urn:postroom:mail-header}subject, exactly and by substring, and serves its bytes', async () => {
    await mail(`ogo+${folderId}@example.org`, scanMessage({ messageId: '<api-1@example.org>', subject: 'Invoice March 2026' }));
    const q = (value: string, match = 'exact') =>
      pr.api(`/api/v1/documents?property=${encodeURIComponent('{urn:postroom:mail-header}subject')}&value=${encodeURIComponent(value)}&match=${match}`);
    const found = await waitFor(async () => (await json(await q('Invoice March 2026'))).items[0], 'the filed document');
    docId = found.id;
    assert.equal(found.folder, folderId);
    assert.ok(found.properties.some((p: { name: string; value: string }) => p.name === '{urn:postroom:mail-header}contentType' && p.value === 'application/pdf'));
    assert.equal((await json(await q('march', 'contains'))).items.length, 1);
    assert.equal((await json(await q('Invoice March'))).items.length, 0, 'exact means the whole value');
    const bytes = await pr.api(`/api/v1/documents/${docId}/content`);
    assert.equal(bytes.headers.get('content-type'), 'application/pdf');
    assert.ok(Buffer.from(await bytes.arrayBuffer()).equals(PDF));
  });

  it('moves and renames a document', async () => {
    const archive = await json(await send('/api/v1/folders', 'POST', { name: 'Archive' }), 201);
    const moved = await json(await send(`/api/v1/documents/${docId}`, 'PATCH', { folder: archive.id, name: 'march.pdf' }));
    assert.deepEqual([moved.folder, moved.name], [archive.id, 'march.pdf']);
    assert.equal((await json(await pr.api(`/api/v1/documents?folder=${folderId}`))).items.length, 0);
    const back = await json(await send(`/api/v1/documents/${docId}`, 'PATCH', { folder: folderId }));
    assert.equal(back.folder, folderId);
    assert.equal((await send(`/api/v1/documents/${docId}`, 'PATCH', { name: '../x' })).status, 400);
  });

  it('defines a workflow and lists its processes with their output', async () => {
    const w = await json(await send('/api/v1/workflows', 'POST', { name: 'count', action: { command: ['wc', '-w'] } }), 201);
    assert.equal(w.address, 'ogo+wf+count@example.org');
    assert.equal((await send('/api/v1/workflows', 'POST', { name: 'count', action: { command: ['true'] } })).status, 400, 'names are unique');
    assert.equal((await send('/api/v1/workflows', 'POST', { name: 'shell', action: { command: 'wc -w' } })).status, 400, 'argv lists only');
    await json(await send(`/api/v1/objects/${w.id}/acl/network`, 'PUT', { permissions: 'r' }));
    await mail('ogo+wf+count@example.org', scanMessage({ messageId: '<api-wf@example.org>', body: 'a b c' }));
    const p = await waitFor(async () => (await json(await pr.api(`/api/v1/processes?workflow=${w.id}&state=completed`))).items[0], 'a completed process');
    assert.equal(p.exitCode, 0);
    const detail = await json(await pr.api(`/api/v1/processes/${p.id}`));
    const out = await (await pr.api(`/api/v1/documents/${detail.output}/content`)).text();
    assert.equal(out.trim(), '3');
  });

  it('answers PROPFIND with Depth 0 and 1 under the token as a Basic password, and GET the bytes', async () => {
    const basic = `Basic ${Buffer.from(`anyone:${pr.apiToken}`).toString('base64')}`;
    const propfind = (path: string, depth?: string, auth: string | null = basic) =>
      fetch(`${pr.baseUrl}${path}`, { method: 'PROPFIND', headers: { ...(auth ? { authorization: auth } : {}), ...(depth ? { depth } : {}) } });
    const root = await propfind('/dav/', '1');
    assert.equal(root.status, 207);
    const rootXml = await root.text();
    assert.match(rootXml, new RegExp(`<D:href>/dav/${folderId}/</D:href>`));
    assert.match(rootXml, /<D:displayname>Invoices<\/D:displayname>/);
    const folder = await (await propfind(`/dav/${folderId}/`, '1')).text();
    assert.match(folder, /<D:getcontenttype>application\/pdf<\/D:getcontenttype>/);
    assert.match(folder, /<p:subject xmlns:p="urn:postroom:mail-header">Invoice March 2026<\/p:subject>/);
    const href = /<D:href>(\/dav\/\d+\/[^<]+\.pdf)<\/D:href>/.exec(folder)?.[1];
    assert.ok(href, folder);
    const zero = await (await propfind(`/dav/${folderId}/`, '0')).text();
    assert.equal(zero.match(/<D:response>/g)?.length, 1, 'Depth 0: the folder alone');
    const got = await fetch(`${pr.baseUrl}${href}`, { headers: { authorization: basic } });
    assert.equal(got.status, 200);
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(PDF));
    assert.equal((await propfind('/dav/', undefined)).status, 403, 'no Depth means infinity: refused');
    const allprop = await fetch(`${pr.baseUrl}/dav/${folderId}/`, {
      method: 'PROPFIND',
      headers: { authorization: basic, depth: '1', 'content-type': 'application/xml; charset=utf-8' },
      body: '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>',
    });
    assert.equal(allprop.status, 207, 'an XML request body is read and answered with every property');
    const options = await fetch(`${pr.baseUrl}/dav/`, { method: 'OPTIONS' });
    assert.equal(options.headers.get('dav'), '1');
    assert.match(options.headers.get('allow') ?? '', /PROPFIND/);
    const anon = await propfind('/dav/', '1', null);
    assert.equal(anon.status, 401);
    assert.match(anon.headers.get('www-authenticate') ?? '', /^Basic /);
    assert.equal((await propfind('/dav/', '1', 'Basic ' + Buffer.from('x:wrong').toString('base64'))).status, 401);
    assert.equal((await propfind(`/dav/${folderId}/nope.pdf`, '0')).status, 404);
  });

  it('lets curl -X PROPFIND browse a folder', async (t) => {
    if (!requirePeer(t, 'curl')) return;
    const { stdout } = await run('curl', ['-sS', '-X', 'PROPFIND', '-H', 'Depth: 1', '-u', `me:${pr.apiToken}`, `${pr.baseUrl}/dav/${folderId}/`]);
    assert.match(stdout, /<D:multistatus xmlns:D="DAV:">/);
    assert.match(stdout, /<D:href>\/dav\/\d+\/march\.pdf<\/D:href>/);
  });
});
