import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { startDovecot, testMessage } from '../helpers/dovecot.js';
import { freePort, skipWithout, tempDir, testBackend, waitFor } from '../helpers/env.js';
import { addDovecotAccount, call, folderMessages } from '../helpers/mail-accounts.js';
import { startServeChild, type ServeChild } from '../helpers/serve-child.js';
import { swaks } from '../helpers/swaks.js';
import { pgTestSchema } from '../helpers/test-db.js';

/**
 * The store failing under a watched folder (every fsync of the serving process answers EIO,
 * injected with strace into Dovecot-fed `postroom serve`) must show in the folder's health: the
 * message stays on the server, the failure is counted with its 4.3.0, and it clears once the
 * store works again. SMTP meanwhile answers 451 4.3.0 (swaks), not a stuck session.
 */
const suite = `a folder's health while the store fails (${testBackend()})`;
describe(suite, { skip: skipWithout(suite, 'dovecot', 'strace', 'swaks') }, () => {
  it('fsync EIO during a fetch: consecutiveFailures and lastError show it, SMTP answers 451; healthy again after', async (t) => {
    const dc = await startDovecot();
    t.after(() => dc.stop());
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const pgs = testBackend() === 'postgres' ? await pgTestSchema() : undefined;
    if (pgs) t.after(() => pgs.drop());
    const configFile = path.join(tmp.dir, 'postroom.yaml');
    // PostgreSQL keeps raw bytes in the database by default, committed and synced by its own
    // process (not traced): with blob files the server fsyncs what it keeps itself.
    const store = pgs ? 'store:\n  blobs: fs\n' : '';
    writeFileSync(configFile, `log:\n  level: warn\n${store}mail:\n  rescanInterval: 1s\n  reconnectMax: 1s\n`);
    const httpPort = await freePort();
    const smtpPort = await freePort();
    const env: Record<string, string> = {
      POSTROOM_DATA_DIR: path.join(tmp.dir, 'data'),
      POSTROOM_SMTP_LISTEN: `127.0.0.1:${smtpPort}`,
      POSTROOM_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
      POSTROOM_API_TOKEN: 'store-failure-token-0123456789',
      ...(pgs ? { POSTROOM_DATABASE_URL: pgs.url } : {}),
    };
    const server: ServeChild = await startServeChild(['--config', configFile], env, tmp.dir);
    t.after(() => server.child.kill('SIGKILL'));
    const api = (p: string, init: RequestInit = {}) =>
      fetch(`http://127.0.0.1:${httpPort}${p}`, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${env.POSTROOM_API_TOKEN}` } });
    const account = await addDovecotAccount(api, dc);
    const inbox = account.folders.find((f) => f.path === 'INBOX');
    await call(api, 'PATCH', `/api/v1/email/folders/${inbox.id}`, { enabled: true, moveOnSuccess: 'Done' });
    const folder = () => call(api, 'GET', `/api/v1/email/folders/${inbox.id}`);
    await waitFor(async () => (await folder()).health.lastOkAt, 'the first good poll', 30_000);

    // SQLite: a small message is kept in the database, and its commit fails at the WAL fsync.
    // PostgreSQL commits in its own process: a message over the inline limit (128 KiB) goes to
    // a blob file, whose fsync fails here.
    const body = pgs ? `${'x'.repeat(998)}\r\n`.repeat(200) : undefined;
    const message = testMessage('eio-1', body ? { body } : {});
    const smtpFile = path.join(tmp.dir, 'smtp.eml');
    // --no-data-fixup sends the file as it is: it carries its own end of data (RFC 5321 §4.1.1.4).
    writeFileSync(smtpFile, `${testMessage('eio-smtp', body ? { body } : {})}.\r\n`);
    const send = () => swaks(smtpPort, ['--from', 'sender@example.org', '--to', 'alice@example.org', '--no-data-fixup', '--data', `@${smtpFile}`]);

    // Every fsync and fdatasync of the server (all its threads: -f) fails from now on.
    const strace = spawn('strace', ['-f', '-p', String(server.child.pid), '-e', 'trace=fsync,fdatasync', '-e', 'inject=fsync,fdatasync:error=EIO', '-o', '/dev/null'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let straceErr = '';
    strace.stderr.setEncoding('utf8').on('data', (d: string) => (straceErr += d));
    // Listening from the start: a strace that ended by a signal has no exitCode to look at later.
    const straceExited = new Promise<void>((r) => strace.once('exit', () => r()));
    // SIGINT detaches cleanly; a strace whose tracee is already killed may not act on it.
    const stopStrace = async () => {
      strace.kill('SIGINT');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([straceExited, new Promise((r) => (timer = setTimeout(r, 5000)))]);
      clearTimeout(timer);
      strace.kill('SIGKILL');
      await straceExited;
    };
    t.after(stopStrace);
    await waitFor(() => /attached/i.test(straceErr), 'strace to attach', 10_000);

    await dc.append('INBOX', [message]);
    const failing = await waitFor(async () => {
      const f = await folder();
      return f.health.consecutiveFailures > 0 ? f : undefined;
    }, 'the failure to keep to show in the folder health', 60_000).catch(async (err: Error) => {
      throw new Error(`${err.message}; folder ${JSON.stringify((await folder()).health)}; serve said:\n${server.stderr().slice(-3000)}`);
    });
    assert.match(failing.health.lastError, /^4\.3\.0 /, failing.health.lastError);
    assert.equal((await dc.messageIds('INBOX')).length, 1, 'left on the server');
    assert.deepEqual(await dc.messageIds('Done').catch(() => []), [], 'not moved');

    const refused = await send();
    assert.match(refused.replies.at(-2) ?? '', /^451 4\.3\.0 /, refused.out);

    await stopStrace();
    const healed = await waitFor(async () => {
      const f = await folder();
      return f.health.consecutiveFailures === 0 && (await folderMessages(api, inbox.id)).length === 1 ? f : undefined;
    }, 'the message kept once the store works again', 60_000);
    assert.equal(healed.health.lastError, null);
    assert.equal((await dc.messageIds('INBOX')).length, 0, 'moved once kept');
    const accepted = await send();
    assert.match(accepted.replies.at(-2) ?? '', /^250 /, accepted.out);
  });
});
