import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { text } from 'node:stream/consumers';
import { grant, NETWORK } from '../../src/domain/acl.js';
import { searchDocuments, type DocumentRecord } from '../../src/domain/folders/documents.js';
import { MAIL_HEADER_NS } from '../../src/domain/objects/properties.js';
import { createObject } from '../../src/domain/objects/store.js';
import { requirePeer, waitFor } from '../helpers/env.js';
import { PDF, PNG, scanMessage } from '../helpers/objects.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { swaks } from '../helpers/swaks.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/**
 * Folders that collect mail, end to end: swaks speaks SMTP to a whole Postroom, which keeps,
 * parses, routes (the `objects` route from `objects: { prefix, domain }`) and files.
 */
describe('document folders over SMTP, with swaks', () => {
  let pr: TestPostroom;
  before(async () => {
    pr = await startTestPostroom({ objects: { prefix: 'ogo', domain: 'example.org' }, delivery: { pollInterval: '50ms' } });
  });
  after(() => pr.close());

  async function folder(collectMIMEType?: string, acl = 'rw') {
    const f = await createObject(pr.db.kysely, { kind: 'folder', name: `scans-${collectMIMEType ?? 'raw'}`, properties: collectMIMEType ? { collectMIMEType } : {} });
    if (acl) await grant(pr.db.kysely, f.id, NETWORK, acl);
    return f;
  }

  /** Send `raw` byte for byte (swaks --no-data-fixup; the file carries the end-of-data dot). */
  async function send(to: string, raw: string) {
    const file = path.join(pr.dir, `msg-${Date.now()}-${Math.random()}.eml`);
    writeFileSync(file, `${raw}.\r\n`);
    return swaks(pr.smtpPort, ['--from', 'scanner@example.org', '--to', to, '--no-data-fixup', '--data', `@${file}`]);
  }

  async function filed(folderId: number, n = 1): Promise<DocumentRecord[]> {
    return waitFor(async () => {
      const docs = await searchDocuments(pr.db.kysely, { folder: folderId, limit: 10 });
      return docs.length >= n ? docs : undefined;
    }, `${n} document(s) in folder ${folderId}`);
  }

  test('application/pdf: a message with a PDF and a PNG leaves exactly the PDF, byte-identical, with header properties', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const f = await folder('application/pdf');
    const run = await send(`ogo+${f.id}@example.org`, scanMessage({ messageId: '<swaks-pdf@example.org>', to: `ogo+${f.id}@example.org` }));
    assert.equal(run.code, 0, run.out);
    const [doc, ...rest] = await filed(f.id);
    assert.equal(rest.length, 0);
    assert.equal(doc.contentType, 'application/pdf');
    const bytes = Buffer.concat(await (await pr.blobs.open(doc.sha256)).toArray());
    assert.ok(bytes.equals(PDF), 'the PDF, byte for byte');
    assert.notEqual(doc.sha256, sha(PNG));
    const prop = (name: string) => doc.properties.find((p) => p.namespace === MAIL_HEADER_NS && p.name === name)?.value;
    assert.equal(prop('subject'), 'Scan of invoice 4711');
    assert.equal(prop('message-id'), '<swaks-pdf@example.org>');
    assert.equal(prop('to'), `ogo+${f.id}@example.org`);
    assert.equal(prop('contentType'), 'application/pdf');
    assert.ok(prop('date'));
  });

  test('text/plain: the text body', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const f = await folder('text/plain');
    const run = await send(`ogo+${f.id}@example.org`, scanMessage({ messageId: '<swaks-txt@example.org>', body: 'Status: all lamps lit' }));
    assert.equal(run.code, 0, run.out);
    const [doc] = await filed(f.id);
    assert.equal((await text(await pr.blobs.open(doc.sha256))).trim(), 'Status: all lamps lit');
  });

  test('unset: the raw message, sha256-identical to what was sent', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const f = await folder();
    const raw = scanMessage({ messageId: '<swaks-raw@example.org>' });
    const run = await send(`ogo+${f.id}@example.org`, raw);
    assert.equal(run.code, 0, run.out);
    const [doc] = await filed(f.id);
    assert.equal(doc.sha256, sha(raw));
    assert.equal(doc.contentType, 'message/rfc822');
  });

  test('without a network write grant: 550 5.7.1 at RCPT and nothing kept', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const f = await folder('application/pdf', 'r');
    const before = await pr.db.kysely.selectFrom('messages').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    const run = await send(`ogo+${f.id}@example.org`, scanMessage({ messageId: '<swaks-denied@example.org>' }));
    assert.notEqual(run.code, 0);
    assert.ok(run.replies.some((r) => /^550 5\.7\.1 /.test(r)), run.replies.join('\n'));
    const afterCount = await pr.db.kysely.selectFrom('messages').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    assert.equal(Number(afterCount.n), Number(before.n), 'no message kept');
    assert.equal((await searchDocuments(pr.db.kysely, { folder: f.id, limit: 5 })).length, 0);
  });

  test('without Message-ID: 550 5.6.0 at the end of DATA and nothing kept', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const f = await folder('application/pdf');
    const count = async () => Number((await pr.db.kysely.selectFrom('messages').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    const before = await count();
    const run = await send(`ogo+${f.id}@example.org`, scanMessage({ messageId: null }));
    assert.notEqual(run.code, 0);
    assert.ok(run.replies.some((r) => r === '550 5.6.0 Message-ID header required'), run.replies.join('\n'));
    assert.equal(await count(), before, 'no message kept');
    assert.equal((await searchDocuments(pr.db.kysely, { folder: f.id, limit: 5 })).length, 0);
  });

  test('an unknown object is 550 5.1.1 at RCPT', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const run = await swaks(pr.smtpPort, ['--from', 'a@example.org', '--to', 'ogo+987654321@example.org', '--quit-after', 'RCPT']);
    assert.ok(run.replies.some((r) => /^550 5\.1\.1 /.test(r)), run.replies.join('\n'));
  });

  test('no matching attachment: the delivery fails permanently with 5.6.0 and the folder stays empty', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const f = await folder('application/zip');
    const run = await send(`ogo+${f.id}@example.org`, scanMessage({ messageId: '<swaks-zip@example.org>' }));
    assert.equal(run.code, 0, 'accepted: the 5.6.0 needs the parsed message');
    const d = await waitFor(async () => {
      const r = await pr.db.kysely.selectFrom('deliveries').selectAll().where('route', '=', 'objects').where('last_error', 'like', '%application/zip%').executeTakeFirst();
      return r?.status === 'failed' ? r : undefined;
    }, 'the failed delivery');
    assert.match(d.last_error!, /^5\.6\.0 /);
  });
});
