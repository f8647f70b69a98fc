import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { grant, NETWORK } from '../../src/domain/acl.js';
import { searchDocuments } from '../../src/domain/folders/documents.js';
import { createObject } from '../../src/domain/objects/store.js';
import { LocalLeases } from '../../src/store/leases.js';
import { Retention } from '../../src/store/retention.js';
import { waitFor } from '../helpers/env.js';
import { PDF, PNG, scanMessage } from '../helpers/objects.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { seedTracker } from '../helpers/tracker.js';

/**
 * One message filed in a folder (its PDF), made into a work package (with its attachments) and
 * posted to a group, then removed by retention: each still reads in full afterwards, because each
 * names the blobs it was made of and the orphan sweep counts those names as references. Nothing
 * else names the raw message: only the post's own reference keeps it.
 */
describe('retention leaves folder documents, work packages and group posts whole', () => {
  let pr: TestPostroom;
  before(async () => {
    pr = await startTestPostroom({
      smtp: { domains: ['example.org', 'tracker.test', 'lists.test'] },
      objects: { prefix: 'ogo', domain: 'example.org' },
      delivery: { pollInterval: '50ms' },
      // The group's only member takes no copies: the post is kept and marked relayed, nothing is sent.
      groups: { relay: { host: '127.0.0.1', port: 9, starttls: 'never' } },
      routes: [
        { name: 'tracker', match: { recipient: 'support@tracker.test' }, deliver: [{ workpackage: { project: 'test_project', no_permission_check: true } }] },
        { name: 'groups', match: { recipient: '*@lists.test' }, deliver: [{ group: {} }] },
      ],
    });
    await seedTracker(pr.db);
  });
  after(() => pr?.close());

  const bytes = async (url: string) => {
    const res = await pr.api(url);
    assert.equal(res.status, 200, `${url}: ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  };

  it('a removed message: its PDF document, its work package with attachments and its group post all read in full', async () => {
    const pdfFolder = await createObject(pr.db.kysely, { kind: 'folder', name: 'scans-pdf', properties: { collectMIMEType: 'application/pdf' } });
    await grant(pr.db.kysely, pdfFolder.id, NETWORK, 'rw');
    const g = await pr.api('/api/v1/groups', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Talk', address: 'talk@lists.test', posting: 'anyone', members: [{ email: 'quiet@members.test', delivery: false }] }),
    });
    assert.equal(g.status, 201, await g.clone().text());
    const group = (await g.json()) as { id: number };

    const rcpts = [`ogo+${pdfFolder.id}@example.org`, 'support@tracker.test', 'talk@lists.test'];
    const raw = scanMessage({ messageId: '<retention-objects@example.org>', to: rcpts.join(', '), body: 'The lamp in room 4 flickers.' });
    const q = rcpts.map((r) => `recipient=${encodeURIComponent(r)}`).join('&');
    const res = await pr.api(`/api/v1/inbound?sender=quiet%40members.test&${q}`, { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: raw });
    assert.equal(res.status, 202, await res.clone().text());
    const { id } = (await res.json()) as { id: string };
    const message = await waitFor(async () => {
      const m = (await (await pr.api(`/api/v1/messages/${id}`)).json()) as { status: string };
      return m.status === 'delivered' ? m : undefined;
    }, 'every delivery done', 30_000);
    assert.ok(message);

    // What each object reads before the message goes.
    const [pdfDoc] = await waitFor(async () => {
      const d = await searchDocuments(pr.db.kysely, { folder: pdfFolder.id, limit: 10 });
      return d.length ? d : undefined;
    }, 'the PDF filed');
    const wps = (await (await pr.api('/api/v1/tracker/work-packages?project=test_project')).json()) as { items: { id: number }[] };
    assert.equal(wps.items.length, 1);
    const wpUrl = `/api/v1/tracker/work-packages/${wps.items[0].id}`;
    const wpBefore = (await (await pr.api(wpUrl)).json()) as { description: string; attachments: { filename: string; url: string }[] };
    assert.match(wpBefore.description, /lamp in room 4 flickers/);
    assert.equal(wpBefore.attachments.length, 2);
    const posts = (await (await pr.api(`/api/v1/groups/${group.id}/posts`)).json()) as { items: { id: number; status: string; rawUrl: string | null }[] };
    assert.equal(posts.items.length, 1);
    assert.equal(posts.items[0].status, 'relayed');
    const pdfBefore = await bytes(`/api/v1/documents/${pdfDoc.id}/content`);
    const attachmentsBefore = await Promise.all(wpBefore.attachments.map((a) => bytes(a.url)));
    const postBefore = await bytes(posts.items[0].rawUrl!);
    assert.ok(pdfBefore.equals(PDF));
    assert.ok(postBefore.equals(Buffer.from(raw)), 'the post as received');

    // Remove it: every message older than 1 ms; no intake is in flight, so the sweep's grace is 0.
    const retention = new Retention({ db: pr.db, blobs: pr.blobs, leases: new LocalLeases(), policy: { defaults: { maxAge: 1 }, routes: {} }, batchSize: 10, graceMs: 0 });
    const report = await retention.purge();
    assert.equal(report.messages, 1);
    assert.ok(report.blobsRemoved >= 1, 'the sweep ran and removed what only the message named (its text part)');
    assert.equal((await pr.api(`/api/v1/messages/${id}`)).status, 404);

    // Each reads as before, bytes and all.
    assert.ok((await bytes(`/api/v1/documents/${pdfDoc.id}/content`)).equals(PDF));
    const wpAfter = (await (await pr.api(wpUrl)).json()) as typeof wpBefore;
    assert.equal(wpAfter.description, wpBefore.description);
    const attachmentsAfter = await Promise.all(wpAfter.attachments.map((a) => bytes(a.url)));
    assert.deepEqual(attachmentsAfter.map((b) => b.toString('base64')), attachmentsBefore.map((b) => b.toString('base64')));
    assert.ok(attachmentsAfter.some((b) => b.equals(PDF)) && attachmentsAfter.some((b) => b.equals(PNG)));
    assert.ok((await bytes(posts.items[0].rawUrl!)).equals(postBefore));
    const post = (await (await pr.api(`/api/v1/groups/${group.id}/posts/${posts.items[0].id}`)).json()) as { subject: string };
    assert.equal(post.subject, 'Scan of invoice 4711');
  });
});
