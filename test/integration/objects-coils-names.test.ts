import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/env.js';
import { scanMessage } from '../helpers/objects.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

/**
 * An operator coming from OpenGroupware Coils writes property names in its form
 * (`{}collectMIMEType`, `{}contentType`, `{us.opengroupware.mail.header}subject`) and searches
 * across every kind of object (zOGI searchForObjects). Postroom's own names stay what is stored
 * and shown; the seed's are aliases.
 */
describe("OpenGroupware Coils' property names and search across objects", () => {
  let pr: TestPostroom;
  let pdfFolder: number;
  let rawFolder: number;
  before(async () => {
    pr = await startTestPostroom({ objects: { prefix: 'ogo', domain: 'example.org' }, delivery: { pollInterval: '50ms' } });
  });
  after(() => pr?.close());

  const json = async (res: Response, status = 200) => {
    const body = await res.text();
    assert.equal(res.status, status, body);
    return body ? JSON.parse(body) : undefined;
  };
  const send = (path: string, method: string, body: unknown) => pr.api(path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const mail = (to: string, raw: string) =>
    pr.intake.accept({ mailFrom: 'scanner@example.org', rcptTo: [to], ingress: 'smtp', clientIp: '127.0.0.1', receivedAt: new Date() }, [Buffer.from(raw)]);
  const q = (params: [string, string][]) => `?${new URLSearchParams(params).toString()}`;

  it('creates a folder with {}collectMIMEType (the setting filing reads) and shows it as {urn:postroom:property}collectMIMEType', async () => {
    const f = await json(await send('/api/v1/folders', 'POST', { name: 'Scans', properties: { '{}collectMIMEType': 'application/pdf' } }), 201);
    assert.deepEqual(f.properties, { collectMIMEType: 'application/pdf' });
    pdfFolder = f.id;
    const props = (await json(await pr.api(`/api/v1/objects/${pdfFolder}/properties`))).items;
    assert.deepEqual(props.map((p: { name: string; value: string }) => [p.name, p.value]), [['{urn:postroom:property}collectMIMEType', 'application/pdf']]);
    // A bad value under the alias is refused as under our own name.
    assert.equal((await send('/api/v1/folders', 'POST', { name: 'Bad', properties: { '{}collectMIMEType': 'not a type' } })).status, 400);
    await json(await send(`/api/v1/objects/${pdfFolder}/acl/network`, 'PUT', { permissions: 'rw' }));
  });

  it('sets a folder setting through the properties API with {}collectMIMEType, and filing follows it', async () => {
    const f = await json(await send('/api/v1/folders', 'POST', { name: 'Everything' }), 201);
    rawFolder = f.id;
    await json(await send(`/api/v1/objects/${rawFolder}/properties`, 'PATCH', { properties: { '{}collectMIMEType': 'image/png, application/pdf' } }));
    assert.deepEqual((await json(await pr.api(`/api/v1/folders/${rawFolder}`))).properties, { collectMIMEType: ['image/png', 'application/pdf'] });
    assert.equal((await send(`/api/v1/objects/${rawFolder}/properties`, 'PATCH', { properties: { '{}keepUnmatched': 'perhaps' } })).status, 400);
    // Removing it under the alias removes the setting: the folder takes raw messages again.
    assert.equal((await pr.api(`/api/v1/objects/${rawFolder}/properties/${encodeURIComponent('{}collectMIMEType')}`, { method: 'DELETE' })).status, 204);
    assert.deepEqual((await json(await pr.api(`/api/v1/folders/${rawFolder}`))).properties, {});
    await json(await send(`/api/v1/objects/${rawFolder}/acl/network`, 'PUT', { permissions: 'rw' }));
    await mail(`ogo+${rawFolder}@example.org`, scanMessage({ messageId: '<coils-raw@example.org>', subject: 'Raw one' }));
    const doc = await waitFor(async () => (await json(await pr.api(`/api/v1/documents?folder=${rawFolder}`))).items[0], 'the raw document');
    assert.equal(doc.contentType, 'message/rfc822');
  });

  it('finds filed documents by {us.opengroupware.mail.header}subject and {}contentType, as by our own names', async () => {
    await mail(`ogo+${pdfFolder}@example.org`, scanMessage({ messageId: '<coils-1@example.org>', subject: 'Invoice Coils 7' }));
    const bySeed = `/api/v1/documents${q([['property', '{us.opengroupware.mail.header}subject'], ['value', 'Invoice Coils 7']])}`;
    const found = await waitFor(async () => (await json(await pr.api(bySeed))).items[0], 'the filed PDF');
    assert.equal(found.folder, pdfFolder);
    const ours = (await json(await pr.api(`/api/v1/documents${q([['property', '{urn:postroom:mail-header}subject'], ['value', 'Invoice Coils 7']])}`))).items;
    assert.deepEqual(ours.map((d: { id: number }) => d.id), [found.id]);
    const byType = (await json(await pr.api(`/api/v1/documents${q([['property', '{}contentType'], ['value', 'application/pdf'], ['folder', String(pdfFolder)]])}`))).items;
    assert.deepEqual(byType.map((d: { id: number }) => d.id), [found.id]);
    // Shown under Postroom's names.
    assert.ok(found.properties.some((p: { name: string }) => p.name === '{urn:postroom:mail-header}subject'));
    // A property set under the seed's header namespace is stored under ours.
    await json(await send(`/api/v1/objects/${found.id}/properties`, 'PATCH', { properties: { '{us.opengroupware.mail.header}x-opengroupware-regarding': '4711' } }));
    const props = (await json(await pr.api(`/api/v1/objects/${found.id}/properties`))).items;
    assert.ok(props.some((p: { name: string; value: string }) => p.name === '{urn:postroom:mail-header}x-opengroupware-regarding' && p.value === '4711'));
  });

  it('searches across kinds: folders by {}collectMIMEType, documents by subject, workflows and processes by properties and name', async () => {
    const wf = await json(await send('/api/v1/workflows', 'POST', { name: 'coils-count', action: { command: ['wc', '-w'] } }), 201);
    await json(await send(`/api/v1/objects/${wf.id}/properties`, 'PATCH', { properties: { '{}department': 'Accounts' } }));
    await json(await send(`/api/v1/objects/${wf.id}/acl/network`, 'PUT', { permissions: 'r' }));
    await mail('ogo+wf+coils-count@example.org', scanMessage({ messageId: '<coils-wf@example.org>', subject: 'count me' }));
    const proc = await waitFor(async () => (await json(await pr.api(`/api/v1/processes?workflow=${wf.id}`))).items.find((p: { state: string }) => p.state === 'completed'), 'the process');
    await json(await send(`/api/v1/objects/${proc.id}/properties`, 'PATCH', { properties: { '{urn:example:audit}checked': 'yes' } }));

    const search = async (params: [string, string][]) => (await json(await pr.api(`/api/v1/objects${q(params)}`))).items as { id: number; kind: string; objectProperties: { name: string }[] }[];
    const folders = await search([['property', '{}collectMIMEType'], ['value', 'application/pdf']]);
    assert.deepEqual(folders.map((o) => [o.id, o.kind]), [[pdfFolder, 'folder']]);
    const docs = await search([['kind', 'document'], ['property', '{us.opengroupware.mail.header}subject'], ['value', 'coils'], ['match', 'contains']]);
    assert.ok(docs.length >= 1 && docs.every((o) => o.kind === 'document'), JSON.stringify(docs));
    const wfs = await search([['property', '{urn:postroom:property}department'], ['value', 'Accounts']]);
    assert.deepEqual(wfs.map((o) => [o.id, o.kind]), [[wf.id, 'workflow']]);
    assert.ok(wfs[0].objectProperties.some((p) => p.name === '{urn:postroom:property}department'));
    const procs = await search([['kind', 'process'], ['property', '{urn:example:audit}checked'], ['value', 'yes']]);
    assert.deepEqual(procs.map((o) => o.id), [proc.id]);
    // Two kinds at once, by name; filters combine with AND.
    const named = await search([['kind', 'folder'], ['kind', 'workflow'], ['name', 'COILS'], ['match', 'contains']]);
    assert.deepEqual(named.map((o) => o.id), [wf.id]);
    assert.deepEqual(await search([['property', '{}collectMIMEType'], ['value', 'application/pdf'], ['kind', 'workflow']]), []);
    // A property without its value is refused.
    assert.equal((await pr.api(`/api/v1/objects${q([['property', '{}contentType']])}`)).status, 400);
  });
});
