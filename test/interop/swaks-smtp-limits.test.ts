import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { DEBIAN_PYTHON, requirePeer } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { RawSmtp, swaks } from '../helpers/swaks.js';

/** Every stored message, envelope decoded. */
async function stored(app: TestPostroom) {
  const rows = await app.db.kysely.selectFrom('messages').select(['id', 'mail_from', 'rcpt_to', 'size', 'message_id']).orderBy('id').execute();
  return rows.map((r) => ({ ...r, rcpt_to: (typeof r.rcpt_to === 'string' ? JSON.parse(r.rcpt_to) : r.rcpt_to) as string[] }));
}

async function withPostroom(overrides: Parameters<typeof startTestPostroom>[0], fn: (app: TestPostroom) => Promise<void>) {
  const app = await startTestPostroom(overrides);
  try {
    await fn(app);
  } finally {
    await app.close();
  }
}

/** Python smtplib, a second independent client: for what swaks cannot do (two transactions on one connection). */
function python(script: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(DEBIAN_PYTHON, ['-c', script, ...args], { timeout: 30_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

const TWO_TRANSACTIONS = `
import json, smtplib, sys
port, big = int(sys.argv[1]), int(sys.argv[2])
s = smtplib.SMTP('127.0.0.1', port)
s.ehlo('client.example.org')
out = {'size': s.esmtp_features.get('size')}
# No SIZE= on MAIL FROM: the limit must hold while the data streams.
out['mail1'] = s.mail('a@example.org')[0]
out['rcpt1'] = s.rcpt('b@postroom.test')[0]
body = b'Subject: big\\r\\nMessage-ID: <big@example.org>\\r\\n\\r\\n' + (b'x' * 76 + b'\\r\\n') * (big // 78)
code, msg = s.data(body)
out['data1'] = [code, msg.decode()]
out['mail2'] = s.mail('a@example.org')[0]
out['rcpt2'] = s.rcpt('b@postroom.test')[0]
code, msg = s.data(b'Subject: small\\r\\nMessage-ID: <small@example.org>\\r\\n\\r\\nsmall\\r\\n')
out['data2'] = [code, msg.decode()]
s.quit()
print(json.dumps(out))
`;

describe('SMTP limits, with swaks and smtplib', () => {
  test('refuses a message over SIZE with 552 5.3.4, keeps nothing of it, and the next transaction on the same connection is kept', async (t) => {
    if (!requirePeer(t, 'python3')) return;
    await withPostroom({ smtp: { maxMessageSize: '16KiB' } }, async (app) => {
      const out = JSON.parse(await python(TWO_TRANSACTIONS, [String(app.smtpPort), String(64 * 1024)]));
      assert.equal(out.size, String(16 * 1024), 'SIZE advertised in EHLO');
      assert.deepEqual(out.data1, [552, '5.3.4 Message size exceeds fixed maximum message size']);
      assert.equal(out.mail2, 250);
      assert.equal(out.rcpt2, 250);
      assert.equal(out.data2[0], 250);
      assert.match(out.data2[1], /^2\.0\.0 Ok: kept as \w+$/);
      const rows = await stored(app);
      assert.deepEqual(
        rows.map((r) => r.message_id),
        ['<small@example.org>'],
      );
    });
  });

  test('refuses MAIL FROM with a declared SIZE over the limit (RFC 1870)', async () => {
    await withPostroom({ smtp: { maxMessageSize: '16KiB' } }, async (app) => {
      const c = await RawSmtp.connect(app.smtpPort);
      try {
        await c.reply();
        await c.cmd('EHLO client.example.org');
        const reply = await c.cmd('MAIL FROM:<a@example.org> SIZE=100000');
        assert.match(reply, /^552 5\.3\.4 /);
      } finally {
        c.close();
      }
      assert.equal((await stored(app)).length, 0);
    });
  });

  test('answers the 101st recipient with 452 4.5.3 and keeps the message for the first 100', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    await withPostroom({}, async (app) => {
      const rcpts = Array.from({ length: 101 }, (_, i) => `r${i + 1}@postroom.test`);
      const r = await swaks(app.smtpPort, ['--from', 'a@example.org', '--to', rcpts.join(',')]);
      assert.equal(r.replies.filter((l) => l === '250 2.1.5 Accepted').length, 100);
      assert.ok(r.replies.includes('452 4.5.3 Too many recipients'), r.out);
      const rows = await stored(app);
      assert.equal(rows.length, 1);
      assert.deepEqual(rows[0].rcpt_to, rcpts.slice(0, 100));
    });
  });

  test('refuses relaying with 554 5.7.1 when domains are configured, and keeps mail for them', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    await withPostroom({ smtp: { domains: ['postroom.test'] } }, async (app) => {
      const relay = await swaks(app.smtpPort, ['--from', 'a@example.org', '--to', 'victim@elsewhere.example']);
      assert.notEqual(relay.code, 0);
      assert.ok(relay.replies.includes('554 5.7.1 Relay access denied: we do not accept mail for <victim@elsewhere.example>'), relay.out);
      assert.equal((await stored(app)).length, 0);
      const ok = await swaks(app.smtpPort, ['--from', 'a@example.org', '--to', 'inbox@postroom.test']);
      assert.equal(ok.code, 0, ok.out);
      assert.equal((await stored(app)).length, 1);
    });
  });

  test('accepts the null sender <>', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    await withPostroom({}, async (app) => {
      const r = await swaks(app.smtpPort, ['--from', '<>', '--to', 'inbox@postroom.test']);
      assert.equal(r.code, 0, r.out);
      assert.ok(r.out.includes(' -> MAIL FROM:<>'), r.out);
      const rows = await stored(app);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].mail_from, '');
    });
  });

  test('keeps a pipelined transaction (PIPELINING advertised, every reply in order)', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    await withPostroom({}, async (app) => {
      const r = await swaks(app.smtpPort, ['--pipeline', '--from', 'a@example.org', '--to', 'one@postroom.test,two@postroom.test']);
      assert.equal(r.code, 0, r.out);
      assert.ok(r.replies.includes('250-PIPELINING'), r.out);
      assert.deepEqual(
        r.replies.filter((l) => /^(250 2|354)/.test(l)).slice(0, 4),
        ['250 2.1.0 Accepted', '250 2.1.5 Accepted', '250 2.1.5 Accepted', '354 End data with <CR><LF>.<CR><LF>'],
      );
      const rows = await stored(app);
      assert.equal(rows.length, 1);
      assert.deepEqual(rows[0].rcpt_to, ['one@postroom.test', 'two@postroom.test']);
    });
  });

  test('with requireMessageId, refuses a message without Message-ID (550 5.6.0) and keeps one with it', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    await withPostroom({ smtp: { requireMessageId: true } }, async (app) => {
      const file = path.join(app.dir, 'no-id.eml');
      writeFileSync(file, 'From: a@example.org\r\nTo: inbox@postroom.test\r\nSubject: no id\r\n\r\nbody\r\n.');
      const bad = await swaks(app.smtpPort, ['--from', 'a@example.org', '--to', 'inbox@postroom.test', '--data', `@${file}`]);
      assert.ok(bad.replies.includes('550 5.6.0 Message-ID header required'), bad.out);
      assert.equal((await stored(app)).length, 0);
      const good = await swaks(app.smtpPort, ['--from', 'a@example.org', '--to', 'inbox@postroom.test']);
      assert.equal(good.code, 0, good.out);
      assert.equal((await stored(app)).length, 1);
    });
  });

  test('answers a connection past maxClients with 421 4.7.0 and closes it', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    await withPostroom({ smtp: { maxClients: 2 } }, async (app) => {
      const held = [await RawSmtp.connect(app.smtpPort), await RawSmtp.connect(app.smtpPort)];
      try {
        for (const c of held) assert.match(await c.reply(), /^220 mx\.postroom\.test /);
        const r = await swaks(app.smtpPort, ['--from', 'a@example.org', '--to', 'inbox@postroom.test']);
        assert.notEqual(r.code, 0);
        assert.deepEqual(r.replies, ['421 4.7.0 Too many connections; try again later']);
      } finally {
        held.forEach((c) => c.close());
      }
      assert.equal((await stored(app)).length, 0);
    });
  });

  test('closes an idle connection after socketTimeout with 421 4.4.2', async () => {
    await withPostroom({ smtp: { socketTimeout: '300ms' } }, async (app) => {
      const c = await RawSmtp.connect(app.smtpPort);
      try {
        assert.match(await c.reply(), /^220 /);
        assert.equal(await c.reply(5_000), '421 4.4.2 Timeout - closing connection');
        assert.ok(await c.closedWithin(5_000));
      } finally {
        c.close();
      }
    });
  });
});
