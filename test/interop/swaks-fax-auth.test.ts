import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { hashPassword } from '../../src/core/passwords.js';
import { selfSignedCert } from '../fixtures/tls/self-signed.js';
import { missingPeers, requirePeer, tempDir } from '../helpers/env.js';
import { startTestPostroom } from '../helpers/postroom.js';
import { swaks } from '../helpers/swaks.js';

/**
 * AUTH as the fax/SMS gateway has it: the user name is the sender's address, and a user may
 * send only as that address (unless smtp.auth.senderIsUser is false). Over STARTTLS only.
 */
let tls: { key: string; cert: string };
let users: Array<{ username: string; password: string }>;

before(async () => {
  if (missingPeers('openssl').length) return;
  const dir = tempDir('postroom-tls-');
  process.on('exit', dir.cleanup);
  tls = selfSignedCert(dir.dir);
  users = [{ username: 'desk@shop.example', password: await hashPassword('s3cret') }];
});

const desk = ['-tls', '--auth', 'PLAIN', '--auth-user', 'desk@shop.example', '--auth-password', 's3cret', '--to', '420111@fax'];

describe('AUTH with the sender address as the user name, with swaks', () => {
  test('sends as its own address (any case of it), and gets 553 5.7.1 for another sender', async (t) => {
    if (!requirePeer(t, 'swaks', 'openssl')) return;
    // 192.0.2.1 only: this client must authenticate.
    const app = await startTestPostroom({ smtp: { clients: ['192.0.2.1'], tls, auth: { users } } });
    try {
      const own = await swaks(app.smtpPort, [...desk, '--from', 'Desk@Shop.Example']);
      assert.equal(own.code, 0, own.out);
      const other = await swaks(app.smtpPort, [...desk, '--from', 'ceo@shop.example']);
      assert.ok(other.replies.includes('553 5.7.1 Sender <ceo@shop.example> is not the address of user desk@shop.example'), other.out);
      const kept = await app.db.kysely.selectFrom('messages').select(['mail_from', 'auth_user']).execute();
      assert.deepEqual(kept, [{ mail_from: 'Desk@Shop.Example', auth_user: 'desk@shop.example' }]);
    } finally {
      await app.close();
    }
  });

  test('with senderIsUser: false the user may send as anyone', async (t) => {
    if (!requirePeer(t, 'swaks', 'openssl')) return;
    const app = await startTestPostroom({ smtp: { clients: ['192.0.2.1'], tls, auth: { users, senderIsUser: false } } });
    try {
      const other = await swaks(app.smtpPort, [...desk, '--from', 'ceo@shop.example']);
      assert.equal(other.code, 0, other.out);
    } finally {
      await app.close();
    }
  });

  test('a wrong password for the sender\'s user is 535 5.7.8', async (t) => {
    if (!requirePeer(t, 'swaks', 'openssl')) return;
    const app = await startTestPostroom({ smtp: { clients: ['192.0.2.1'], tls, auth: { users } } });
    try {
      const r = await swaks(app.smtpPort, ['-tls', '--auth', 'PLAIN', '--auth-user', 'desk@shop.example', '--auth-password', 'wrong', '--to', '420111@fax', '--from', 'desk@shop.example']);
      assert.ok(r.replies.some((l) => l.startsWith('535 5.7.8')), r.out);
    } finally {
      await app.close();
    }
  });
});
