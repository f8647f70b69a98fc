import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201aa3d6b470000000049454e44ae426082', 'hex');
const b64 = (b: Buffer) => b.toString('base64').replace(/.{1,76}/g, '$&\r\n');

const RAW = [
  'From: Bob <bob@example.net>',
  'To: inbox@postroom.test',
  'Subject: With a logo',
  'Message-ID: <rest-1@example.net>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="outer"',
  '',
  '--outer',
  'Content-Type: multipart/related; boundary="rel"',
  '',
  '--rel',
  'Content-Type: text/html; charset=utf-8',
  '',
  '<p>Hello <img src="cid:logo@example.net"></p>',
  '--rel',
  'Content-Type: image/png',
  'Content-Transfer-Encoding: base64',
  'Content-ID: <logo@example.net>',
  'Content-Disposition: inline; filename="logo.png"',
  '',
  b64(PNG) + '--rel--',
  '--outer',
  'Content-Type: text/plain; name="notes.txt"',
  'Content-Disposition: attachment; filename="notes.txt"',
  '',
  'attached notes',
  '--outer--',
  '',
].join('\r\n');

/** The email processor service's REST model paths answer as ours do, with the same auth. */
describe('REST model paths of the email processor service', () => {
  let pr: TestPostroom;
  let id: string;
  const M = '/rest/v1/model/email/Messages';

  before(async () => {
    pr = await startTestPostroom();
    const res = await pr.api('/api/v1/inbound?recipient=inbox@postroom.test&sender=bob@example.net', { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: RAW });
    assert.equal(res.status, 202, await res.clone().text());
    id = ((await res.json()) as { id: string }).id;
    await waitFor(async () => (await pr.api(`/api/v1/messages/${id}/html`)).status === 200 || undefined, 'the message parsed');
  });
  after(async () => {
    await pr?.close();
  });

  const json = async <T>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> => {
    const res = await pr.api(url, init);
    return { status: res.status, body: (await res.json()) as T };
  };

  it('Messages, Messages/ID, /html, /attachments, /inlines (a list) and /rawMessage answer as /api/v1 does', async () => {
    const list = await json<{ items: { id: string }[] }>(M);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.items.map((m) => m.id), [id]);
    const one = await json<{ id: string; subject: string }>(`${M}/${id}`);
    assert.deepEqual([one.status, one.body.id, one.body.subject], [200, id, 'With a logo']);

    const html = await pr.api(`${M}/${id}/html`);
    assert.equal(html.status, 200);
    assert.match(await html.text(), /Hello <img src="cid:logo@example\.net">/);

    const attachments = await json<{ items: { filename: string; contentId: string | null }[] }>(`${M}/${id}/attachments`);
    assert.deepEqual(attachments.body.items.map((p) => p.filename).sort(), ['logo.png', 'notes.txt']);

    for (const url of [`${M}/${id}/inlines`, `/api/v1/messages/${id}/inlines`]) {
      const inlines = await json<{ items: { filename: string; contentId: string | null; url: string }[] }>(url);
      assert.equal(inlines.status, 200, url);
      assert.deepEqual(inlines.body.items.map((p) => [p.filename, p.contentId]), [['logo.png', 'logo@example.net']], url);
    }
    const logo = await pr.api(`${M}/${id}/inlines/logo@example.net`);
    assert.equal(logo.status, 200);
    assert.deepEqual(Buffer.from(await logo.arrayBuffer()), PNG);

    const raw = await pr.api(`${M}/${id}/rawMessage?trace=0`);
    assert.equal(raw.status, 200);
    assert.equal(await raw.text(), RAW);
  });

  it('Profiles, Accounts and Folders are the email collections under their names; without credentials 401', async () => {
    const created = await json<{ id: string; name: string }>('/rest/v1/model/email/Profiles', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'seed', protocol: 'imap', host: '127.0.0.1', port: 1, tls: 'none' }),
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const profiles = await json<{ items: { id: string }[] }>('/api/v1/email/profiles');
    assert.deepEqual(profiles.body.items.map((p) => p.id), [created.body.id]);
    assert.equal((await json<{ name: string }>(`/rest/v1/model/email/Profiles/${created.body.id}`)).body.name, 'seed');
    assert.deepEqual((await json<{ items: unknown[] }>('/rest/v1/model/email/Accounts')).body.items, []);
    assert.deepEqual((await json<{ items: unknown[] }>('/rest/v1/model/email/Folders')).body.items, []);
    const anonymous = await fetch(`${pr.baseUrl}${M}`);
    assert.equal(anonymous.status, 401);
  });

  it('the OpenAPI document lists each alias as an operation', async () => {
    const doc = (await json<{ paths: Record<string, unknown> }>('/api/v1/openapi.json')).body;
    for (const p of ['/rest/v1/model/email/Messages', '/rest/v1/model/email/Messages/{id}/rawMessage', '/rest/v1/model/email/Messages/{id}/inlines', '/rest/v1/model/email/Profiles']) {
      assert.ok(doc.paths[p], p);
    }
  });
});
