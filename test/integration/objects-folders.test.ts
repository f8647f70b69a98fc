import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { text } from 'node:stream/consumers';
import type { Target } from '../../src/core/delivery.js';
import { MailError } from '../../src/core/errors.js';
import { buildParsedView } from '../../src/mime/parsed-view.js';
import { grant, hasPermissions, listAcl, NETWORK, normalisePermissions } from '../../src/domain/acl.js';
import { DEFAULT_HEADER_PROPERTIES } from '../../src/domain/folders/collect.js';
import { moveDocument, searchDocuments } from '../../src/domain/folders/documents.js';
import { MAIL_HEADER_NS, parseClark } from '../../src/domain/objects/properties.js';
import { createObject } from '../../src/domain/objects/store.js';
import { createWorkflow } from '../../src/domain/workflows/store.js';
import { workflowDefinition } from '../../src/domain/workflows/definition.js';
import { createFolderTarget, folderParams, type FolderParams } from '../../src/targets/folder.js';
import { deliveryRig, type DeliveryRig } from '../helpers/delivery.js';
import { deliveryCtx, PDF, scanMessage } from '../helpers/objects.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** The reply a check or delivery threw, as `code status`. */
async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof MailError, `a MailError, got ${String(e)}`);
    return `${e.smtpCode} ${e.status}`;
  }
  return 'accepted';
}

describe('objects, ACLs and folders', () => {
  let rig: DeliveryRig;
  let folder: Target<FolderParams>;
  const params = folderParams.parse({});
  before(async () => {
    rig = await deliveryRig();
    folder = createFolderTarget({ db: rig.db, blobs: rig.blobs, headers: DEFAULT_HEADER_PROPERTIES });
  });
  after(() => rig.cleanup());

  async function newFolder(properties: Record<string, unknown> = {}, acl = 'rw') {
    const f = await createObject(rig.db.kysely, { kind: 'folder', name: `f-${Math.random().toString(36).slice(2)}`, properties });
    if (acl) await grant(rig.db.kysely, f.id, NETWORK, acl);
    return f;
  }

  async function deliver(folderId: number, raw: string, deliveryId?: string) {
    const m = await rig.keep(raw, { rcptTo: [`ogo+${folderId}@example.org`] });
    const view = await buildParsedView(rig, m.id);
    const receipt = await folder.deliver(view, params, deliveryCtx({ captures: { objectId: String(folderId) }, ...(deliveryId ? { deliveryId } : {}) }));
    return { m, receipt, docs: await searchDocuments(rig.db.kysely, { folder: folderId, limit: 50 }) };
  }

  it('gives every kind of object an id from one increasing sequence', async () => {
    const a = await createObject(rig.db.kysely, { kind: 'folder', name: 'seq-a' });
    const w = await createWorkflow(rig.db, workflowDefinition.parse({ name: 'seq-wf', action: { command: ['true'] } }));
    const b = await createObject(rig.db.kysely, { kind: 'folder', name: 'seq-b' });
    assert.ok(a.id < w.id && w.id < b.id, `${a.id} < ${w.id} < ${b.id}`);
  });

  it('gives the network principal no rights until granted, and users only their own', async () => {
    const f = await newFolder({}, '');
    assert.equal(await hasPermissions(rig.db.kysely, f.id, NETWORK, 'r'), false);
    assert.equal(await grant(rig.db.kysely, f.id, NETWORK, 'wr'), 'rw');
    assert.equal(await hasPermissions(rig.db.kysely, f.id, NETWORK, 'rw'), true);
    assert.equal(await hasPermissions(rig.db.kysely, f.id, 'alice', 'r'), false, 'a user does not inherit network rights');
    await grant(rig.db.kysely, f.id, 'alice', 'r');
    assert.deepEqual(await listAcl(rig.db.kysely, f.id), [
      { principal: 'alice', permissions: 'r' },
      { principal: 'network', permissions: 'rw' },
    ]);
    assert.equal(await grant(rig.db.kysely, f.id, 'alice', ''), '');
    assert.deepEqual((await listAcl(rig.db.kysely, f.id)).map((e) => e.principal), ['network']);
    assert.throws(() => normalisePermissions('rx'), /permission 'x' unknown/);
  });

  it('answers RCPT for an unknown object or a non-folder with 550 5.1.1', async () => {
    const check = (objectId: string) => folder.check!(`ogo+${objectId}@example.org`, params, { captures: { objectId } });
    assert.equal(await refusal(check('999999999')), '550 5.1.1');
    assert.equal(await refusal(check('abc')), '550 5.1.1');
    const w = await createWorkflow(rig.db, workflowDefinition.parse({ name: 'not-a-folder', action: { command: ['true'] } }));
    assert.equal(await refusal(check(String(w.id))), '550 5.1.1');
  });

  it('answers RCPT with 550 5.7.1 unless the principal holds read and write', async () => {
    const f = await newFolder({}, '');
    const check = (authUser?: string) => folder.check!(`ogo+${f.id}@example.org`, params, { captures: { objectId: String(f.id) }, authUser });
    assert.equal(await refusal(check()), '550 5.7.1');
    await grant(rig.db.kysely, f.id, NETWORK, 'r');
    assert.equal(await refusal(check()), '550 5.7.1', 'read alone is not enough');
    await grant(rig.db.kysely, f.id, NETWORK, 'rw');
    assert.equal(await refusal(check()), 'accepted');
    assert.equal(await refusal(check('bob')), '550 5.7.1', 'an authenticated user acts as itself');
    await grant(rig.db.kysely, f.id, 'bob', 'rw');
    assert.equal(await refusal(check('bob')), 'accepted');
  });

  it('files only the PDF of a message with a PDF and a PNG, byte-identical, with header properties', async () => {
    const f = await newFolder({ collectMIMEType: 'application/pdf' });
    const { docs, receipt } = await deliver(f.id, scanMessage({ messageId: '<pdf-1@example.org>' }));
    assert.equal(docs.length, 1, receipt.summary);
    const [d] = docs;
    assert.equal(d.sha256, sha(PDF));
    assert.equal(await text(await rig.blobs.open(d.sha256)).then((s) => s.length > 0), true);
    assert.match(d.name, /^pdf-1@example\.org-\d{8}T\d{6}Z-scan\.pdf$/);
    const prop = (name: string) => d.properties.find((p) => p.namespace === MAIL_HEADER_NS && p.name === name)?.value;
    assert.equal(prop('subject'), 'Scan of invoice 4711');
    assert.equal(prop('from'), 'Scanner <scanner@example.org>');
    assert.equal(prop('message-id'), '<pdf-1@example.org>');
    assert.equal(prop('x-mailer'), 'ScanStation 3000');
    assert.equal(prop('contentType'), 'application/pdf');
    assert.equal(prop('cc'), undefined, 'only headers present');
  });

  it('files the text body with text/plain, the raw message when unset, and matches wildcards', async () => {
    const t = await newFolder({ collectMIMEType: 'text/plain' });
    const [body] = (await deliver(t.id, scanMessage({ messageId: '<txt-1@example.org>', body: 'hello folder' }))).docs;
    assert.equal((await text(await rig.blobs.open(body.sha256))).trim(), 'hello folder');
    assert.match(body.name, /\.txt$/);

    const r = await newFolder({});
    const raw = scanMessage({ messageId: '<raw-1@example.org>' });
    const [whole] = (await deliver(r.id, raw)).docs;
    assert.equal(whole.sha256, sha(raw), 'sha256 of the document is that of the bytes sent');
    assert.equal(whole.contentType, 'message/rfc822');

    const img = await newFolder({ collectMIMEType: ['image/*', 'application/zip'] });
    const imgs = (await deliver(img.id, scanMessage({ messageId: '<img-1@example.org>' }))).docs;
    assert.deepEqual(imgs.map((d) => d.contentType.split(';')[0]), ['image/png']);
  });

  it('fails 5.6.0 without a matching attachment unless the folder keeps it, and without a Message-ID', async () => {
    const f = await newFolder({ collectMIMEType: 'application/zip' });
    const e = await refusal(deliver(f.id, scanMessage({ messageId: '<zip-1@example.org>' })));
    assert.equal(e, '550 5.6.0');
    assert.equal((await searchDocuments(rig.db.kysely, { folder: f.id, limit: 5 })).length, 0);
    const keep = await newFolder({ collectMIMEType: 'application/zip', keepUnmatched: true });
    const kept = (await deliver(keep.id, scanMessage({ messageId: '<zip-2@example.org>' }))).docs;
    assert.equal(kept[0].contentType, 'message/rfc822');
    assert.equal(await refusal(deliver(keep.id, scanMessage({ messageId: null }))), '550 5.6.0');
  });

  it('files nothing twice for a retried delivery, and gives a clashing name a suffix', async () => {
    const f = await newFolder({ collectMIMEType: 'application/pdf' });
    const raw = scanMessage({ messageId: '<twice@example.org>' });
    const first = await deliver(f.id, raw, 'delivery-a');
    const again = await folder.deliver(await buildParsedView(rig, first.m.id), params, deliveryCtx({ deliveryId: 'delivery-a', captures: { objectId: String(f.id) } }));
    assert.deepEqual(again.documents, first.receipt.documents);
    const other = await deliver(f.id, raw, 'delivery-b');
    assert.equal(other.docs.length, 2);
    const names = other.docs.map((d) => d.name);
    assert.equal(new Set(names).size, 2, `unique names: ${names.join(', ')}`);
  });

  it('finds documents by a property, exactly or by a case-insensitive substring, and moves them', async () => {
    const f = await newFolder({ collectMIMEType: 'application/pdf' });
    await deliver(f.id, scanMessage({ messageId: '<s-1@example.org>', subject: 'Quarterly report 100%_done' }));
    await deliver(f.id, scanMessage({ messageId: '<s-2@example.org>', subject: 'Something else' }));
    const { namespace, name } = parseClark('{urn:postroom:mail-header}subject');
    const exact = await searchDocuments(rig.db.kysely, { properties: [{ namespace, name, value: 'Quarterly report 100%_done', match: 'exact' }], limit: 10 });
    assert.equal(exact.length, 1);
    const none = await searchDocuments(rig.db.kysely, { properties: [{ namespace, name, value: 'quarterly report', match: 'exact' }], limit: 10 });
    assert.equal(none.length, 0);
    const contains = await searchDocuments(rig.db.kysely, { properties: [{ namespace, name, value: 'REPORT 100%_', match: 'contains' }], limit: 10 });
    assert.deepEqual(contains.map((d) => d.id), exact.map((d) => d.id));
    const wildcardIsLiteral = await searchDocuments(rig.db.kysely, { properties: [{ namespace, name, value: 'report 1_0', match: 'contains' }], limit: 10 });
    assert.equal(wildcardIsLiteral.length, 0, '_ and % are literal characters');

    const to = await newFolder();
    const moved = await moveDocument(rig.db, exact[0].id, { folder: to.id, name: 'report.pdf' });
    assert.equal(moved.folder, to.id);
    assert.equal(moved.name, 'report.pdf');
    assert.equal(moved.sha256, exact[0].sha256);
  });
});
