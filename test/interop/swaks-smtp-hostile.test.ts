import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, test } from 'node:test';
import { requirePeer } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { swaks } from '../helpers/swaks.js';
import type { ConfigInput } from '../../src/config/schema.js';

async function withPostroom(overrides: ConfigInput, fn: (app: TestPostroom) => Promise<void>) {
  const app = await startTestPostroom(overrides);
  try {
    await fn(app);
  } finally {
    await app.close();
  }
}

/** Run a Python snippet with Debian's python3 (smtplib, socket); resolves with its stdout. */
function python(script: string, args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/python3', ['-c', script, ...args], { timeout: timeoutMs }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

async function count(app: TestPostroom): Promise<number> {
  const r = await app.db.kysely.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

describe('hostile SMTP input, with swaks', () => {
  test('answers an unknown MAIL FROM parameter with 555 5.5.4 (RFC 5321 §4.1.1.11) and keeps nothing', async (t) => {
    if (!requirePeer(t, 'swaks', 'swaks')) return;
    await withPostroom({}, async (app) => {
      // swaks wraps --from in <>: the '>' inside closes the address, what follows is a parameter.
      const r = await swaks(app.smtpPort, ['--from', 'a@example.org> FOO=bar', '--to', 'inbox@postroom.test']);
      assert.notEqual(r.code, 0);
      assert.ok(r.replies.includes('555 5.5.4 MAIL FROM parameter FOO not recognized or not implemented'), r.out);
      assert.equal(await count(app), 0);
      // The parameters we advertise still pass (Python smtplib adds SIZE= itself).
      if (!requirePeer(t, '/usr/bin/python3', 'python3')) return;
      const ok = await python(
        "import smtplib,sys\ns=smtplib.SMTP('127.0.0.1',int(sys.argv[1]))\ns.ehlo('c.example.org')\nprint(s.sendmail('a@example.org',['inbox@postroom.test'],b'Subject: x\\r\\n\\r\\nx\\r\\n',mail_options=['BODY=8BITMIME','SMTPUTF8']))",
        [String(app.smtpPort)],
      );
      assert.equal(ok.trim(), '{}');
      assert.equal(await count(app), 1);
    });
  });

  test('answers a RCPT TO parameter of an extension not offered (DSN NOTIFY) with 555 5.5.4', async (t) => {
    if (!requirePeer(t, 'swaks', 'swaks')) return;
    await withPostroom({}, async (app) => {
      const r = await swaks(app.smtpPort, ['--from', 'a@example.org', '--to', 'inbox@postroom.test> NOTIFY=NEVER']);
      assert.notEqual(r.code, 0);
      assert.ok(r.replies.includes('555 5.5.4 RCPT TO parameter NOTIFY not recognized or not implemented'), r.out);
      assert.equal(await count(app), 0);
    });
  });
});
