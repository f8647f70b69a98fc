import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { requirePeer, skipWithout, waitFor } from '../helpers/env.js';
import { addDovecotAccount, call } from '../helpers/mail-accounts.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

/**
 * The folder list is polled, as the email processor service did: a folder made on the server
 * appears (disabled) without POST /api/v1/email/folders/refresh.
 */
describe('folder list polled from Dovecot', { skip: skipWithout('folder list polled from Dovecot', 'dovecot') }, () => {
  let dc: Dovecot;
  let pr: TestPostroom;
  before(async () => {
    dc = await startDovecot();
    pr = await startTestPostroom({ mail: { rescanInterval: 1000, folderListInterval: '1s' } });
  });
  after(async () => {
    await pr?.close();
    await dc?.stop();
  });

  it('a folder created on the server later shows up in GET /api/v1/email/folders, disabled, with no refresh asked', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const account = await addDovecotAccount(pr.api, dc);
    assert.deepEqual(account.discovery, { ok: true, error: null });
    assert.equal(account.folders.some((f: { path: string }) => f.path === 'ProjectsNew'), false);
    const client = await dc.client();
    try {
      await client.mailboxCreate('ProjectsNew');
    } finally {
      await client.logout();
    }
    const found = await waitFor(async () => {
      const { items } = await call(pr.api, 'GET', `/api/v1/email/folders?account=${account.id}`);
      return items.find((f: { path: string }) => f.path === 'ProjectsNew');
    }, 'the new server folder listed', 30_000);
    assert.equal(found.enabled, false);
  });
});
