import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.js';
import { hashPassword } from '../../src/core/passwords.js';
import { selfSignedCert } from '../fixtures/tls/self-signed.js';
import { missingPeers, requirePeer, tempDir } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { RawSmtp, swaks } from '../helpers/swaks.js';

let tls: { key: string; cert: string };
let users: Array<{ username: string; password: string }>;

before(async () => {
  // Without openssl there is no certificate: each case then skips (or fails under CI) on it.
  if (missingPeers('openssl').length) return;
  const dir = tempDir('postroom-tls-');
  process.on('exit', dir.cleanup);
  tls = selfSignedCert(dir.dir);
  users = [{ username: 'alice', password: await hashPassword('s3cret') }];
});

async function withPostroom(smtp: NonNullable<ConfigInput['smtp']>, fn: (app: TestPostroom) => Promise<void>) {
  const app = await startTestPostroom({ smtp });
  try {
    await fn(app);
  } finally {
    await app.close();
  }
}

async function rows(app: TestPostroom) {
  return app.db.kysely.selectFrom('messages').select(['auth_user', 'trace']).execute();
}

const send = ['--from', 'a@example.org', '--to', 'inbox@postroom.test'];
const alice = ['--auth-user', 'alice', '--auth-password', 's3cret'];

describe('SMTP AUTH, STARTTLS and the client allowlist, with swaks', () => {
  test('does not offer AUTH before STARTTLS and refuses it with 538 5.7.0', async (t) => {
    if (!requirePeer(t, 'swaks', 'openssl')) return;
    await withPostroom({ tls, auth: { users } }, async (app) => {
      const r = await swaks(app.smtpPort, [...send, '--auth', 'PLAIN', ...alice]);
      assert.notEqual(r.code, 0);
      assert.ok(r.replies.includes('250-STARTTLS') || r.replies.includes('250 STARTTLS'), r.out);
      assert.ok(!r.replies.some((l) => /^250[- ]AUTH/.test(l)), `AUTH offered in cleartext:\n${r.out}`);
      const c = await RawSmtp.connect(app.smtpPort);
      try {
        await c.reply();
        await c.cmd('EHLO client.example.org');
        const token = Buffer.from('\0alice\0s3cret').toString('base64');
        assert.equal(await c.cmd(`AUTH PLAIN ${token}`), '538 5.7.0 Error: Must issue a STARTTLS command first');
      } finally {
        c.close();
      }
      assert.equal((await rows(app)).length, 0);
    });
  });

  test('accepts AUTH PLAIN and LOGIN after STARTTLS and records the user (ESMTPSA)', async (t) => {
    if (!requirePeer(t, 'swaks', 'openssl')) return;
    await withPostroom({ tls, auth: { users } }, async (app) => {
      for (const method of ['PLAIN', 'LOGIN']) {
        const r = await swaks(app.smtpPort, [...send, '-tls', '--auth', method, ...alice]);
        assert.equal(r.code, 0, r.out);
        assert.ok(r.replies.includes('235 2.7.0 Authentication successful'), r.out);
      }
      const kept = await rows(app);
      assert.equal(kept.length, 2);
      for (const k of kept) {
        assert.equal(k.auth_user, 'alice');
        assert.match(k.trace ?? '', / with ESMTPSA id /);
      }
    });
  });

  test('with auth.allowInsecure, offers and accepts AUTH without TLS', async (t) => {
    if (!requirePeer(t, 'swaks', 'openssl')) return;
    await withPostroom({ clients: ['10.0.0.0/8'], auth: { users, allowInsecure: true } }, async (app) => {
      const r = await swaks(app.smtpPort, [...send, '--auth', 'LOGIN', ...alice]);
      assert.equal(r.code, 0, r.out);
      assert.ok(r.replies.includes('250-AUTH PLAIN LOGIN'), r.out);
      assert.ok(r.replies.includes('235 2.7.0 Authentication successful'), r.out);
      assert.equal((await rows(app))[0]?.auth_user, 'alice');
    });
  });

  test('never takes a password in the clear: users without TLS or allowInsecure turn AUTH off', async (t) => {
    if (!requirePeer(t, 'swaks', 'openssl')) return;
    await withPostroom({ clients: ['10.0.0.0/8'], auth: { users } }, async (app) => {
      // AUTH is off, so a client outside the allowlist has no way in.
      const r = await swaks(app.smtpPort, [...send, '--auth', 'PLAIN', ...alice]);
      assert.deepEqual(r.replies, ['554 5.7.1 Client host rejected: access denied']);
    });
    await withPostroom({ auth: { users } }, async (app) => {
      const c = await RawSmtp.connect(app.smtpPort);
      try {
        await c.reply();
        assert.doesNotMatch(await c.cmd('EHLO client.example.org'), /AUTH/);
        assert.match(await c.cmd(`AUTH PLAIN ${Buffer.from('\0alice\0s3cret').toString('base64')}`), /^5\d\d /);
      } finally {
        c.close();
      }
      assert.equal((await rows(app)).length, 0);
    });
  });

  test('refuses a wrong password with 535 5.7.8', async (t) => {
    if (!requirePeer(t, 'swaks', 'openssl')) return;
    await withPostroom({ tls, auth: { users } }, async (app) => {
      const r = await swaks(app.smtpPort, [...send, '-tls', '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 'wrong']);
      assert.notEqual(r.code, 0);
      assert.ok(r.replies.includes('535 5.7.8 Authentication credentials invalid'), r.out);
      const nobody = await swaks(app.smtpPort, [...send, '-tls', '--auth', 'LOGIN', '--auth-user', 'mallory', '--auth-password', 's3cret']);
      assert.ok(nobody.replies.includes('535 5.7.8 Authentication credentials invalid'), nobody.out);
      assert.equal((await rows(app)).length, 0);
    });
  });

  test('refuses a client outside the allowlist with 554 5.7.1 when AUTH is not configured', async (t) => {
    if (!requirePeer(t, 'swaks', 'openssl')) return;
    await withPostroom({ clients: ['10.0.0.0/8', '192.168.1.0-192.168.1.31'] }, async (app) => {
      const r = await swaks(app.smtpPort, send);
      assert.notEqual(r.code, 0);
      assert.deepEqual(r.replies, ['554 5.7.1 Client host rejected: access denied']);
      assert.equal((await rows(app)).length, 0);
    });
  });

  test('keeps mail from an allowlisted client without AUTH', async (t) => {
    if (!requirePeer(t, 'swaks', 'openssl')) return;
    await withPostroom({ clients: ['127.0.0.0/8'], tls, auth: { users } }, async (app) => {
      const r = await swaks(app.smtpPort, send);
      assert.equal(r.code, 0, r.out);
      assert.equal((await rows(app)).length, 1);
    });
  });

  test('answers a client outside the allowlist 530 5.7.0 until it authenticates, then keeps its mail', async (t) => {
    if (!requirePeer(t, 'swaks', 'openssl')) return;
    await withPostroom({ clients: ['10.0.0.0/8'], tls, auth: { users } }, async (app) => {
      const anon = await swaks(app.smtpPort, [...send, '-tls']);
      assert.notEqual(anon.code, 0);
      assert.ok(anon.replies.includes('530 5.7.0 Authentication required'), anon.out);
      assert.equal((await rows(app)).length, 0);
      const authed = await swaks(app.smtpPort, [...send, '-tls', '--auth', 'PLAIN', ...alice]);
      assert.equal(authed.code, 0, authed.out);
      assert.equal((await rows(app)).length, 1);
    });
  });

  test('drops a client outside the allowlist that talks before the delayed greeting', async (t) => {
    // No swaks here, but the certificate: without TLS, auth is off and the allowlist refuses at once.
    if (!requirePeer(t, 'openssl')) return;
    await withPostroom({ clients: ['10.0.0.0/8'], tls, auth: { users }, greetingDelay: { others: '2s' } }, async (app) => {
      const c = await RawSmtp.connect(app.smtpPort);
      try {
        c.write('EHLO early.example.org\r\n');
        assert.equal(await c.reply(), '554 5.5.1 Protocol error: talked before the greeting (RFC 5321 section 3.1)');
        assert.ok(await c.closedWithin(5_000));
      } finally {
        c.close();
      }
    });
  });

  test('greets an allowlisted client without the delay meant for others', async () => {
    await withPostroom({ clients: ['127.0.0.1'], greetingDelay: { others: '60s' } }, async (app) => {
      const c = await RawSmtp.connect(app.smtpPort);
      try {
        assert.equal(await c.reply(10_000), '220 mx.postroom.test Postroom ESMTP');
      } finally {
        c.close();
      }
    });
  });
});
