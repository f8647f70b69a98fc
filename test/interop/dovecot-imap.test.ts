import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { imapPass, type ImapJob } from '../../src/ingress/fetch/imap.js';
import { imapClient } from '../../src/ingress/fetch/imap-session.js';
import type { Accept } from '../../src/intake/accept.js';
import { startDovecot, testMessage, type Dovecot } from '../helpers/dovecot.js';
import { freePort, requirePeer, skipWithout, tempDir, testBackend, waitFor } from '../helpers/env.js';
import { addDovecotAccount, call, enableFolder, folderMessages } from '../helpers/mail-accounts.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { cleanEnv, startServeChild, type ServeChild } from '../helpers/serve-child.js';
import { pgTestSchema } from '../helpers/test-db.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('IMAP fetch from a real Dovecot', { skip: skipWithout('IMAP fetch from a real Dovecot', 'dovecot') }, () => {
  let dc: Dovecot;
  let pr: TestPostroom;
  before(async () => {
    dc = await startDovecot();
    pr = await startTestPostroom({ mail: { rescanInterval: 1000 } });
  });
  after(async () => {
    await pr?.close();
    await dc?.stop();
  });

  it('with IDLE, a message appended to INBOX is kept within 2 s, then moved to Done', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const account = await addDovecotAccount(pr.api, dc);
    assert.deepEqual(account.discovery, { ok: true, error: null });
    const inbox = account.folders.find((f) => f.path === 'INBOX');
    assert.ok(inbox, 'INBOX discovered');
    assert.equal(inbox.enabled, false, 'discovered folders start disabled');
    await enableFolder(pr.api, inbox.id, { moveOnSuccess: 'Done' });

    const appended = Date.now();
    await dc.append('INBOX', [testMessage('idle-1', { returnPath: 'bounces@example.org' })]);
    const [kept] = await waitFor(async () => {
      const items = await folderMessages(pr.api, inbox.id);
      return items.length ? items : undefined;
    }, 'the appended message to be kept', 2_000);
    t.diagnostic(`kept ${Date.now() - appended} ms after APPEND`);
    assert.equal(kept.ingress, 'imap');
    assert.equal(kept.messageId, '<msg-idle-1@test.example>');
    assert.equal(kept.mailFrom, 'bounces@example.org', 'envelope sender from Return-Path');
    assert.deepEqual(kept.rcptTo, ['alice@example.org'], "envelope recipient: the account's address");
    await waitFor(async () => (await dc.messageIds('Done')).length === 1, 'the message to be moved to Done');
    assert.deepEqual(await dc.messageIds('INBOX'), []);
    const byAccount = await call(pr.api, 'GET', `/api/v1/email/messages?account=${account.id}`);
    assert.deepEqual(byAccount.items.map((m: any) => m.id), [kept.id]);
    // The cursor moves after the server action (keep → move → advance).
    const folder = await waitFor(async () => {
      const f = await call(pr.api, 'GET', `/api/v1/email/folders/${inbox.id}`);
      return f.fetched === 1 ? f : undefined;
    }, 'the cursor to advance');
    assert.equal(folder.lastUid, 1);
    assert.equal(folder.health.consecutiveFailures, 0);
    assert.equal(folder.health.stale, false);
    const metrics = await (await pr.api('/metrics')).text();
    assert.match(metrics, /postroom_fetch_messages_total\{protocol="imap",account="alice-[a-z0-9]+",folder="INBOX",outcome="kept"\} 1/);
    await call(pr.api, 'PATCH', `/api/v1/email/folders/${inbox.id}`, { enabled: false });
  });

  it('an operator enables and disables a folder (audited); a viewer may not, and only an admin changes what happens to mail', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const account = await addDovecotAccount(pr.api, dc);
    const folder = account.folders.find((f) => f.path === 'Archive') ?? account.folders.find((f) => f.path !== 'INBOX') ?? account.folders[0];
    const tokenOf = async (name: string, role: string) => {
      await call(pr.api, 'POST', '/api/v1/users', { name, role, password: 'correct horse battery' }, 201);
      return (await call(pr.api, 'POST', '/api/v1/tokens', { user: name, name: `${name} script`, scope: 'write' }, 201)).token as string;
    };
    const as = (token: string) => (pathname: string, init: RequestInit = {}) =>
      fetch(pr.baseUrl + pathname, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` } });
    const operator = as(await tokenOf('opal', 'operator'));
    const viewer = as(await tokenOf('vance', 'viewer'));
    assert.equal((await call(operator, 'POST', `/api/v1/email/folders/${folder.id}/enable`)).enabled, true);
    assert.equal((await call(operator, 'POST', `/api/v1/email/folders/${folder.id}/disable`)).enabled, false);
    await call(viewer, 'POST', `/api/v1/email/folders/${folder.id}/enable`, undefined, 403);
    await call(operator, 'PATCH', `/api/v1/email/folders/${folder.id}`, { deleteOnServer: true }, 403);
    assert.equal((await call(pr.api, 'GET', `/api/v1/email/folders/${folder.id}`)).enabled, false);
    const audit = await call(pr.api, 'GET', '/api/v1/audit?actor=opal');
    assert.deepEqual(audit.items.map((e: { action: string }) => e.action), ['email.folder.disable', 'email.folder.enable']);
  });

  it('moves and deletes on the server only after intake kept the message; a failure to keep leaves it there', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    await dc.append('Gate', [testMessage('gate-1'), testMessage('gate-2')]);
    const settings = { host: dc.host, port: dc.imapPort, tls: 'none' as const, username: dc.user, password: dc.pass };
    const job: ImapJob = {
      settings,
      path: 'Gate',
      origin: { ingress: 'imap', folder: 'gate-scope', recipient: 'gate@example.org', host: dc.host, username: dc.user },
      deleteOnServer: true,
      moveOnSuccess: null,
      moveOnFailure: null,
      maxSize: 10 * 1024 * 1024,
      batch: 10,
    };
    const client = await imapClient(settings);
    client.on('error', () => {});
    await client.connect();
    t.after(() => client.logout().catch(() => client.close()));
    await client.mailboxOpen('Gate');

    // The store is down: nothing may disappear from the server.
    const down: Accept = async () => {
      throw Object.assign(new Error('disk on fire'), { code: 'EIO' });
    };
    await assert.rejects(imapPass(client, job, { accept: down, log: pr.log }), /Could not store|try again/);
    assert.equal((await dc.messageIds('Gate')).length, 2, 'both still on the server');

    // While intake keeps each message, it is still on the server; it goes only afterwards.
    const seenOnServerDuringKeep: number[] = [];
    const watching: Accept = async (env, raw, opts) => {
      seenOnServerDuringKeep.push((await dc.messageIds('Gate')).length);
      return pr.intake.accept(env, raw, opts);
    };
    const res = await imapPass(client, job, { accept: watching, log: pr.log });
    assert.deepEqual(res, { kept: 2, duplicates: 0, refused: 0 });
    assert.deepEqual(seenOnServerDuringKeep, [2, 2]);
    await client.noop();
    assert.deepEqual(await dc.messageIds('Gate'), []);
  });

  it('after a UIDVALIDITY change the folder is read again and nothing is kept twice (with or without Message-ID)', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    await dc.append('Archive', [testMessage('uv-1'), testMessage('uv-2', { messageId: null, body: 'no message id here' })]);
    const account = (await call(pr.api, 'GET', '/api/v1/email/accounts')).items[0];
    const refreshed = await call(pr.api, 'POST', `/api/v1/email/folders/refresh?account=${account.id}`);
    const archive = refreshed.items[0].folders.find((f: any) => f.path === 'Archive');
    assert.ok(archive, 'a folder created later appears on refresh');
    await enableFolder(pr.api, archive.id);
    await waitFor(async () => (await folderMessages(pr.api, archive.id)).length === 2, 'both messages kept');
    await call(pr.api, 'PATCH', `/api/v1/email/folders/${archive.id}`, { enabled: false });

    // As if the server had rebuilt the folder: a different UIDVALIDITY, every UID suspect.
    await pr.db.kysely.updateTable('mail_folders').set({ uidvalidity: '1', last_uid: 99 }).where('id', '=', archive.id).execute();
    await enableFolder(pr.api, archive.id);
    const f = await waitFor(async () => {
      const x = await call(pr.api, 'GET', `/api/v1/email/folders/${archive.id}`);
      return x.uidValidity !== '1' && x.lastUid === 2 ? x : undefined;
    }, 'the folder to be re-synchronised');
    assert.equal(f.fetched, 2, 're-read messages came back as duplicates, not new ones');
    const all = await call(pr.api, 'GET', '/api/v1/messages?subject=message%20uv&limit=50');
    assert.equal(all.items.length, 2, 'two messages kept, not four');
    assert.equal((await dc.messageIds('Archive')).length, 2, 'left on the server (no delete or move configured)');
    await call(pr.api, 'PATCH', `/api/v1/email/folders/${archive.id}`, { enabled: false });
  });

  it('a wrong password shows as the folder health (authentication error), and nothing crashes', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const account = await addDovecotAccount(pr.api, dc);
    const inbox = account.folders.find((f) => f.path === 'INBOX');
    await enableFolder(pr.api, inbox.id);
    await call(pr.api, 'PATCH', `/api/v1/email/accounts/${account.id}`, { password: 'wrong-password' });
    const f = await waitFor(async () => {
      const x = await call(pr.api, 'GET', `/api/v1/email/folders/${inbox.id}`);
      return x.health.consecutiveFailures > 0 ? x : undefined;
    }, 'the failed login to be recorded', 15_000);
    assert.match(f.health.lastError, /^5\.7\.8 .*login refused/i);
    assert.ok(f.health.lastErrorAt);
    const health = await pr.api('/healthz');
    assert.equal(health.status, 200, 'the server is still up');
    // Discovery with the wrong password reports, and still creates the account.
    const bad = await addDovecotAccount(pr.api, dc, { password: 'nope' });
    assert.equal(bad.discovery.ok, false);
    assert.match(bad.discovery.error!, /5\.7\.8/);
    await call(pr.api, 'DELETE', `/api/v1/email/accounts/${account.id}`);
  });

  it('postroom fetch imap: one pass, kept mail moved to --move-on-success, exit 0; a second run finds nothing; wrong password exits 77', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    await dc.append('Cron', [testMessage('cron-1'), testMessage('cron-2'), testMessage('cron-3')]);
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const config = path.join(tmp.dir, 'postroom.yaml');
    writeFileSync(config, `dataDir: ${tmp.dir}/data\nstore:\n  database: ${process.env.POSTROOM_TEST_BACKEND === 'postgres' ? JSON.stringify(pr.config.store.database) : `${tmp.dir}/data/postroom.db`}\n`);
    const cli = (args: string[]) =>
      run(process.execPath, [path.join(root, 'bin/postroom.js'), 'fetch', 'imap', '--config', config, '--host', dc.host, '--port', String(dc.imapPort), '--username', dc.user, ...args], {
        env: cleanEnv(),
      }).then(
        (r) => ({ code: 0, stderr: r.stderr }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
    const first = await cli(['--password', dc.pass, '--folder', 'Cron', '--move-on-success', 'Cron-Done', '--recipient', 'cron@example.org']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /kept 3, already kept 0, refused 0/);
    assert.equal((await dc.messageIds('Cron-Done')).length, 3, 'moved (the folder was created on TRYCREATE)');
    assert.deepEqual(await dc.messageIds('Cron'), []);
    const second = await cli(['--password', dc.pass, '--folder', 'Cron', '--move-on-success', 'Cron-Done']);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /kept 0, already kept 0, refused 0/);
    const wrong = await cli(['--password', 'wrong', '--folder', 'Cron']);
    assert.equal(wrong.code, 77, wrong.stderr);
    assert.match(wrong.stderr, /^postroom fetch: 5\.7\.8 .*login refused/m);
    const unreachable = await run(process.execPath, [path.join(root, 'bin/postroom.js'), 'fetch', 'imap', '--config', config, '--host', '127.0.0.1', '--port', '1', '--username', 'x', '--password', 'y'], { env: cleanEnv() }).catch((e) => e);
    assert.equal(unreachable.code, 75, unreachable.stderr);
    assert.match(unreachable.stderr, /^postroom fetch: 4\.4\.4 /m);
  });
});

describe('IMAP fetch across a crash', { skip: skipWithout('IMAP fetch across a crash', 'dovecot') }, () => {
  it('SIGKILL during a 500-message fetch, restart: every message kept exactly once, all moved to Done, INBOX empty', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const N = 500;
    const dc = await startDovecot();
    t.after(() => dc.stop());
    const appendStart = Date.now();
    await dc.append('INBOX', Array.from({ length: N }, (_, i) => testMessage(`crash-${i}`)));
    t.diagnostic(`appended ${N} in ${Date.now() - appendStart} ms`);

    const tmp = tempDir();
    t.after(tmp.cleanup);
    const pgs = testBackend() === 'postgres' ? await pgTestSchema() : undefined;
    if (pgs) t.after(() => pgs.drop());
    const configFile = path.join(tmp.dir, 'postroom.yaml');
    // Small rounds so the kill lands mid-fetch; a fast rescan so the restarted node starts at once.
    writeFileSync(configFile, 'log:\n  level: warn\nmail:\n  batch: 10\n  rescanInterval: 1s\n');
    const httpPort = await freePort();
    const env: Record<string, string> = {
      POSTROOM_DATA_DIR: path.join(tmp.dir, 'data'),
      POSTROOM_SMTP_LISTEN: `127.0.0.1:${await freePort()}`,
      POSTROOM_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
      POSTROOM_API_TOKEN: 'crash-test-token-0123456789',
      ...(pgs ? { POSTROOM_DATABASE_URL: pgs.url } : {}),
    };
    const children: ServeChild[] = [];
    t.after(() => children.forEach((c) => c.child.kill('SIGKILL')));
    const serve = async () => {
      const c = await startServeChild(['--config', configFile], env, tmp.dir);
      children.push(c);
      return c;
    };
    const api = (p: string, init: RequestInit = {}) =>
      fetch(`http://127.0.0.1:${httpPort}${p}`, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${env.POSTROOM_API_TOKEN}` } });

    let server = await serve();
    const account = await addDovecotAccount(api, dc);
    const inbox = account.folders.find((f) => f.path === 'INBOX');
    await call(api, 'PATCH', `/api/v1/email/folders/${inbox.id}`, { enabled: true, moveOnSuccess: 'Done' });
    const keptBeforeKill = await waitFor(async () => {
      const n = (await folderMessages(api, inbox.id)).length;
      return n >= 60 ? n : undefined;
    }, 'some messages to be kept', 30_000);
    server.child.kill('SIGKILL');
    await server.exited;
    t.diagnostic(`killed after ${keptBeforeKill} kept`);
    assert.ok(keptBeforeKill < N, 'the kill landed mid-fetch');

    server = await serve();
    await waitFor(async () => (await dc.messageIds('INBOX')).length === 0, 'INBOX to be emptied', 60_000);
    // Another session may see INBOX emptied a moment before Dovecot shows the moved messages
    // in Done (its index catches up): wait for Done to settle rather than read it once.
    let done: string[] = [];
    await waitFor(async () => (done = await dc.messageIds('Done')).length >= N, `all ${N} messages in Done`, 10_000).catch(
      () => {},
    );
    assert.equal(done.length, N, 'every message moved to Done once');
    assert.equal(new Set(done).size, N);
    const kept = await folderMessages(api, inbox.id);
    assert.equal(kept.length, N, 'every message kept exactly once');
    assert.deepEqual(new Set(kept.map((m) => m.messageId)), new Set(Array.from({ length: N }, (_, i) => `<msg-crash-${i}@test.example>`)));
    const folder = await call(api, 'GET', `/api/v1/email/folders/${inbox.id}`);
    assert.equal(folder.fetched, N);
    server.child.kill('SIGTERM');
    await server.exited;
  });
});
