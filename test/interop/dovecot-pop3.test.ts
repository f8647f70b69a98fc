import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Pop3Session } from '../../src/ingress/fetch/pop3-client.js';
import { startDovecot, testMessage, type Dovecot } from '../helpers/dovecot.js';
import { requirePeer, skipWithout, tempDir, testBackend, waitFor } from '../helpers/env.js';
import { addDovecotAccount, call, enableFolder, folderMessages } from '../helpers/mail-accounts.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { cleanEnv } from '../helpers/serve-child.js';
import { pgTestSchema } from '../helpers/test-db.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('POP3 fetch from a real Dovecot', { skip: skipWithout('POP3 fetch from a real Dovecot', 'dovecot') }, () => {
  let dc: Dovecot;
  let pr: TestPostroom;
  before(async () => {
    dc = await startDovecot({ apop: true });
    pr = await startTestPostroom({ mail: { rescanInterval: 1000 } });
  });
  after(async () => {
    await pr?.close();
    await dc?.stop();
  });

  it('with UIDL, a second poll fetches nothing new; a later message alone is kept; the bytes are kept exactly', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    // A line starting with '.' is dot-stuffed on the wire (RFC 1939 §3) and must come back unstuffed.
    const tricky = testMessage('pop-1', { body: '.leading dot\r\n..two dots\r\nend' });
    await dc.append('INBOX', [tricky, testMessage('pop-2')]);
    const account = await addDovecotAccount(pr.api, dc, { protocol: 'pop3', options: { after_read_timeout: '200ms' } });
    assert.deepEqual(account.discovery, { ok: true, error: null });
    assert.deepEqual(account.folders.map((f) => f.path), ['INBOX'], 'POP3 has one mailbox');
    const inbox = account.folders[0];
    await enableFolder(pr.api, inbox.id);
    const kept = await waitFor(async () => {
      const m = await folderMessages(pr.api, inbox.id);
      return m.length === 2 ? m : undefined;
    }, 'both messages kept');
    const first = kept.find((m) => m.messageId === '<msg-pop-1@test.example>');
    const raw = await (await pr.api(`/api/v1/messages/${first.id}/raw?trace=0`)).text();
    assert.equal(raw, tricky, 'byte for byte, dot-unstuffed');
    assert.equal(first.ingress, 'pop3');

    // Several more polls (every 200 ms): nothing new is kept, nothing is deleted (deleteOnServer off).
    const polled = (await call(pr.api, 'GET', `/api/v1/email/folders/${inbox.id}`)).health.lastOkAt;
    await waitFor(async () => (await call(pr.api, 'GET', `/api/v1/email/folders/${inbox.id}`)).health.lastOkAt > polled, 'another poll');
    await new Promise((r) => setTimeout(r, 600));
    assert.equal((await folderMessages(pr.api, inbox.id)).length, 2);
    const folder = await call(pr.api, 'GET', `/api/v1/email/folders/${inbox.id}`);
    assert.equal(folder.fetched, 2);
    const metrics = await (await pr.api('/metrics')).text();
    assert.doesNotMatch(metrics, /protocol="pop3".*outcome="duplicate"/, 'UIDL tracking: nothing downloaded twice');
    assert.equal((await dc.messageIds('INBOX')).length, 2, 'left on the server');

    await dc.append('INBOX', [testMessage('pop-3')]);
    await waitFor(async () => (await folderMessages(pr.api, inbox.id)).length === 3, 'the new message kept');

    // deleteOnServer: the messages already kept are deleted at the next poll (DELE … QUIT).
    await call(pr.api, 'PATCH', `/api/v1/email/folders/${inbox.id}`, { deleteOnServer: true });
    await waitFor(async () => (await dc.messageIds('INBOX')).length === 0, 'the kept messages deleted on the server');
    assert.equal((await folderMessages(pr.api, inbox.id)).length, 3, 'and none kept twice');
    await call(pr.api, 'PATCH', `/api/v1/email/folders/${inbox.id}`, { enabled: false });
  });

  it('APOP logs in when the server offers it (timestamp in the greeting); a wrong secret is a refused login', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const s = await Pop3Session.open({ host: dc.host, port: dc.pop3Port, tls: 'none', username: dc.user, password: dc.pass, apop: true });
    assert.ok((await s.uidl()) instanceof Map);
    await s.quit();
    await assert.rejects(
      Pop3Session.open({ host: dc.host, port: dc.pop3Port, tls: 'none', username: dc.user, password: 'wrong', apop: true }),
      (e: Error & { status?: string }) => e.status === '5.7.8',
    );
  });

  it('postroom fetch pop3: kept messages deleted, exit 0; a second run finds nothing; --keep keeps nothing twice; wrong password exits 77', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    await dc.append('INBOX', [testMessage('cron-pop-1'), testMessage('cron-pop-2')]);
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const pgs = testBackend() === 'postgres' ? await pgTestSchema() : undefined;
    if (pgs) t.after(() => pgs.drop());
    const config = path.join(tmp.dir, 'postroom.yaml');
    writeFileSync(config, `dataDir: ${tmp.dir}/data\n${pgs ? `store:\n  database: ${JSON.stringify(pgs.url)}\n` : ''}`);
    const cli = (args: string[]) =>
      run(process.execPath, [path.join(root, 'bin/postroom.js'), 'fetch', 'pop3', '--config', config, '--host', dc.host, '--port', String(dc.pop3Port), '--username', dc.user, ...args], { env: cleanEnv() }).then(
        (r) => ({ code: 0, stderr: r.stderr }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
    const keep = await cli(['--password', dc.pass, '--apop', '--keep']);
    assert.equal(keep.code, 0, keep.stderr);
    assert.match(keep.stderr, /kept 2, already kept 0, refused 0/);
    const again = await cli(['--password', dc.pass, '--keep']);
    assert.match(again.stderr, /kept 0, already kept 2, refused 0/, 'left on the server, recognised, not kept twice');
    const take = await cli(['--password', dc.pass]);
    assert.equal(take.code, 0, take.stderr);
    assert.deepEqual(await dc.messageIds('INBOX'), [], 'deleted once kept');
    const empty = await cli(['--password', dc.pass]);
    assert.match(empty.stderr, /kept 0, already kept 0, refused 0/);
    const wrong = await cli(['--password', 'wrong']);
    assert.equal(wrong.code, 77, wrong.stderr);
    assert.match(wrong.stderr, /^postroom fetch: 5\.7\.8 .*login refused/m);
  });
});
