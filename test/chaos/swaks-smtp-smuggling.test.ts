import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { requirePeer } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { RawSmtp, swaks } from '../helpers/swaks.js';

// SMTP smuggling (SEC Consult, 2023): an end-of-data look-alike inside DATA, followed by a second
// transaction. Each variant is one "line ending . line ending" a lenient server takes as the end.
const VARIANTS: Array<[string, string]> = [
  ['bare LF', '\n.\n'],
  ['bare CR', '\r.\r'],
  ['CRLF . LF', '\r\n.\n'],
  ['LF . CRLF', '\n.\r\n'],
  ['CR . CRLF', '\r.\r\n'],
];

const REFUSED = '550 5.5.2 Bare LF or bare CR in message data is not allowed (RFC 5321 section 2.3.8)';

/** The DATA file for swaks --no-data-fixup: a message, the smuggled end + transaction, the real end. */
function smugglingPayload(end: string): string {
  const eol = end.includes('\n') ? '\n' : '\r';
  const smuggled = ['MAIL FROM:<evil@attacker.example>', 'RCPT TO:<inbox@postroom.test>', 'DATA', 'From: ceo@postroom.test', 'Subject: smuggled', '', 'pay the invoice'].join(eol);
  // swaks sends the file as it is and then CRLF, so ending it with CRLF "." makes the real end.
  return `From: a@example.org\r\nTo: inbox@postroom.test\r\nSubject: carrier\r\nMessage-ID: <carrier@example.org>\r\n\r\nhello${end}${smuggled}${eol}.\r\n.`;
}

async function count(app: TestPostroom): Promise<number> {
  return (await app.db.kysely.selectFrom('messages').select('id').execute()).length;
}

async function rawOf(app: TestPostroom, id: string): Promise<Buffer> {
  const row = await app.db.kysely.selectFrom('messages').select('raw_sha256').where('id', '=', id).executeTakeFirstOrThrow();
  const chunks: Buffer[] = [];
  for await (const c of await app.blobs.open(row.raw_sha256)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('SMTP smuggling payloads, sent byte for byte with swaks', { timeout: 300_000 }, () => {
  test('refuses every bare-LF / bare-CR end-of-data look-alike with 550 5.5.2 and keeps nothing', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const app = await startTestPostroom({});
    try {
      for (const [name, end] of VARIANTS) {
        const file = path.join(app.dir, 'payload.eml');
        writeFileSync(file, smugglingPayload(end), 'latin1');
        const r = await swaks(app.smtpPort, ['--from', 'a@example.org', '--to', 'inbox@postroom.test', '--no-data-fixup', '--data', `@${file}`]);
        assert.deepEqual(r.replies.slice(-2), [REFUSED, '221 2.0.0 Bye'], `${name}:\n${r.out}`);
        assert.ok(!r.replies.some((l) => /Ok: kept/.test(l)), `${name}: nothing accepted`);
        assert.equal(await count(app), 0, `${name}: nothing stored`);
      }
    } finally {
      await app.close();
    }
  });

  test('with bareLineEndings: normalize, keeps exactly one message (never two) with every line ending CRLF', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const app = await startTestPostroom({ smtp: { bareLineEndings: 'normalize' } });
    try {
      let n = 0;
      for (const [name, end] of VARIANTS) {
        const file = path.join(app.dir, 'payload.eml');
        // A distinct Message-ID per variant, so no run is mistaken for a retransmission of another.
        writeFileSync(file, smugglingPayload(end).replace('<carrier@', `<carrier-${n}@`), 'latin1');
        const r = await swaks(app.smtpPort, ['--from', 'a@example.org', '--to', 'inbox@postroom.test', '--no-data-fixup', '--data', `@${file}`]);
        const kept = r.replies.filter((l) => /^250 2\.0\.0 Ok: kept as \w+$/.test(l));
        assert.equal(kept.length, 1, `${name}:\n${r.out}`);
        n++;
        assert.equal(await count(app), n, `${name}: exactly one more message`);
        const raw = await rawOf(app, kept[0].split(' ').pop()!);
        assert.doesNotMatch(raw.toString('latin1'), /[^\r]\n|\r[^\n]/, `${name}: no bare line ending kept`);
        assert.ok(raw.includes('MAIL FROM:<evil@attacker.example>\r\n'), `${name}: the smuggled commands are content of the one message`);
      }
    } finally {
      await app.close();
    }
  });

  test('after refusing a smuggling payload, the next transaction on the same connection is kept (and only it)', async () => {
    const app = await startTestPostroom({});
    const c = await RawSmtp.connect(app.smtpPort);
    try {
      assert.match(await c.reply(), /^220 /);
      await c.cmd('EHLO client.example.org');
      assert.equal(await c.cmd('MAIL FROM:<a@example.org>'), '250 2.1.0 Accepted');
      assert.equal(await c.cmd('RCPT TO:<inbox@postroom.test>'), '250 2.1.5 Accepted');
      assert.match(await c.cmd('DATA'), /^354 /);
      c.write(`Subject: one\r\n\r\nhello\n.\nMAIL FROM:<evil@attacker.example>\nRCPT TO:<inbox@postroom.test>\nDATA\nSubject: two\n\nevil\r\n.\r\n`);
      assert.equal(await c.reply(), REFUSED);
      assert.equal(await c.cmd('MAIL FROM:<a@example.org>'), '250 2.1.0 Accepted');
      assert.equal(await c.cmd('RCPT TO:<inbox@postroom.test>'), '250 2.1.5 Accepted');
      assert.match(await c.cmd('DATA'), /^354 /);
      c.write('Subject: clean\r\nMessage-ID: <clean@example.org>\r\n\r\nclean\r\n.\r\n');
      assert.match(await c.reply(), /^250 2\.0\.0 Ok: kept as \w+$/);
      assert.equal(await c.cmd('QUIT'), '221 2.0.0 Bye');
      const rows = await app.db.kysely.selectFrom('messages').select(['message_id']).execute();
      assert.deepEqual(rows, [{ message_id: '<clean@example.org>' }]);
    } finally {
      c.close();
      await app.close();
    }
  });
});
