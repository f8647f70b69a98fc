import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startDovecot, testMessage, type Dovecot } from '../helpers/dovecot.js';
import { requirePeer, skipWithout, testBackend, waitFor } from '../helpers/env.js';
import { addDovecotAccount, call, enableFolder, folderMessages } from '../helpers/mail-accounts.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { cleanEnv } from '../helpers/serve-child.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A message with no Return-Path, as a mail client APPENDs it (Dovecot adds none). */
function noReturnPath(n: string, extra: string[] = []): string {
  return [...extra, 'From: Sender <sender@example.org>', 'To: hook@example.org', `Subject: ${n}`, `Message-ID: <${n}@test.example>`, '', `body ${n}`, ''].join('\r\n');
}

describe(`fetched mail from a real Dovecot: sender, refusals, health, one-shot hand-off (${testBackend()})`, { skip: skipWithout('fetched mail from a real Dovecot', 'dovecot') }, () => {
  let dc: Dovecot;
  let pr: TestPostroom;
  let hook: http.Server;
  const hits: { at: number; body: any }[] = [];

  before(async () => {
    dc = await startDovecot();
    hook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        hits.push({ at: Date.now(), body: JSON.parse(body) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/in`;
    pr = await startTestPostroom({
      // Under 5 minutes: a healthy IDLE session must still read healthy.
      mail: { rescanInterval: 1000, staleAfter: '3s' },
      delivery: { pollInterval: '200ms' },
      routes: [{ name: 'hooks', match: { recipient: 'hook@example.org' }, deliver: [{ webhook: { url, allowPrivate: true } }] }],
    });
  });
  after(async () => {
    await pr?.close();
    await dc?.stop();
    hook.closeAllConnections();
    await new Promise((r) => hook.close(r));
  });

  const hitFor = (messageId: string) => hits.find((h) => JSON.stringify(h.body).includes(messageId));

  it('takes the envelope sender from From: when there is no Return-Path, so a webhook route takes it; a bounce (<>) is refused with the route and reason recorded', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const account = await addDovecotAccount(pr.api, dc, { address: 'hook@example.org' });
    const inbox = account.folders.find((f) => f.path === 'INBOX');
    await enableFolder(pr.api, inbox.id);
    await dc.append('INBOX', [noReturnPath('no-rp-1'), testMessage('bounce-1', { returnPath: '' })]);
    const kept = await waitFor(async () => {
      const items = await folderMessages(pr.api, inbox.id);
      return items.length === 2 ? items : undefined;
    }, 'both messages kept', 30_000);
    const plain = kept.find((m) => m.messageId === '<no-rp-1@test.example>');
    const bounce = kept.find((m) => m.messageId === '<msg-bounce-1@test.example>');
    assert.equal(plain.mailFrom, 'sender@example.org', 'envelope sender from From: (fetchmail: Return-Path, else Sender, else From)');
    assert.equal(bounce.mailFrom, '', 'Return-Path: <> stays the null sender');
    await waitFor(() => hitFor('no-rp-1@test.example'), 'the webhook to get the message without Return-Path', 30_000);
    const refused = await waitFor(async () => {
      const m = await call(pr.api, 'GET', `/api/v1/messages/${bounce.id}`);
      return m.error ? m : undefined;
    }, 'the bounce to be marked unrouted', 30_000);
    assert.equal(refused.status, 'received');
    assert.match(refused.error, /^no route took any recipient: <hook@example\.org>: route "hooks" refused: 5\.7\.1 Null sender not accepted/);
    assert.equal(hitFor('bounce-1@test.example'), undefined);
    await call(pr.api, 'PATCH', `/api/v1/email/folders/${inbox.id}`, { enabled: false });
  });

  it('a healthy folder under IDLE never reads stale with mail.staleAfter under 5 minutes (3 s here)', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const account = await addDovecotAccount(pr.api, dc, { address: 'hook@example.org' });
    await dc.append('Idle', [noReturnPath('idle-health-1')]);
    const refreshed = await call(pr.api, 'POST', `/api/v1/email/folders/refresh?account=${account.id}`);
    const folder = refreshed.items[0].folders.find((f: any) => f.path === 'Idle');
    await enableFolder(pr.api, folder.id);
    // Three times staleAfter: with one good poll per 5-minute IDLE it read stale after 3 s.
    const until = Date.now() + 9_000;
    let checks = 0;
    while (Date.now() < until) {
      const f = await call(pr.api, 'GET', `/api/v1/email/folders/${folder.id}`);
      assert.equal(f.health.stale, false, `stale at check ${checks} (last ok ${f.health.lastOkAt})`);
      assert.equal(f.health.consecutiveFailures, 0);
      checks++;
      await new Promise((r) => setTimeout(r, 500));
    }
    t.diagnostic(`${checks} checks over 9 s, never stale`);
    await call(pr.api, 'PATCH', `/api/v1/email/folders/${folder.id}`, { enabled: false });
  });

  it('mail kept by a one-shot `postroom fetch` is parsed and routed by the running server within seconds, not after the 60 s grace', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    await dc.append('Cron', [noReturnPath('cron-handoff-1')]);
    const config = path.join(pr.dir, 'fetch-cli.json');
    writeFileSync(config, JSON.stringify({ dataDir: pr.config.dataDir, store: { database: pr.config.store.database } }));
    const r = await run(process.execPath, [path.join(root, 'bin/postroom.js'), 'fetch', 'imap', '--config', config, '--host', dc.host, '--port', String(dc.imapPort), '--username', dc.user, '--password', dc.pass, '--folder', 'Cron', '--recipient', 'hook@example.org'], { env: cleanEnv() });
    assert.match(r.stderr, /kept 1, already kept 0, refused 0/);
    const exited = Date.now();
    const hit = await waitFor(() => hitFor('cron-handoff-1@test.example'), 'the webhook to get the one-shot fetched message', 120_000);
    const took = hit.at - exited;
    t.diagnostic(`routed and delivered ${took} ms after postroom fetch exited`);
    // The parse poll runs every 2 s (parse.pollInterval); the old path waited for a 60 s grace.
    assert.ok(took < 10_000, `delivered ${took} ms after the fetch: the 60 s path`);
  });
});
