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

  // The fax gateway's nonstandard_data_terminator: CRLF SP . CRLF ends DATA for the listed
  // clients only. For them it is a second end-of-data form, so it must never reach anyone else.
  test('nonstandardDataTerminator: CRLF SP . CRLF ends DATA for a listed client, even split across packets', async () => {
    const app = await startTestPostroom({ smtp: { nonstandardDataTerminator: ['localhost, 127.0.0.1'] } });
    const c = await RawSmtp.connect(app.smtpPort);
    try {
      assert.match(await c.reply(), /^220 /);
      await c.cmd('EHLO fax.example.org');
      for (const [n, pieces] of [
        [1, ['Subject: fax 1\r\nMessage-ID: <fax1@example.org>\r\n\r\nnumber 1\r\n .\r\n']],
        [2, ['Subject: fax 2\r\nMessage-ID: <fax2@example.org>\r\n\r\nnumber 2\r\n', ' .', '\r\n']],
      ] as const) {
        assert.equal(await c.cmd('MAIL FROM:<fax@example.org>'), '250 2.1.0 Accepted');
        assert.equal(await c.cmd('RCPT TO:<inbox@postroom.test>'), '250 2.1.5 Accepted');
        assert.match(await c.cmd('DATA'), /^354 /);
        for (const p of pieces) {
          c.write(p);
          await new Promise((r) => setTimeout(r, 20)); // separate writes, so separate segments most of the time
        }
        const kept = await c.reply();
        assert.match(kept, /^250 2\.0\.0 Ok: kept as \w+$/, `fax ${n}`);
        const raw = (await rawOf(app, kept.split(' ').pop()!)).toString('latin1');
        assert.ok(raw.endsWith(`number ${n}\r\n`), JSON.stringify(raw.slice(-30)));
      }
      // The standard end still ends DATA for that client.
      assert.equal(await c.cmd('MAIL FROM:<fax@example.org>'), '250 2.1.0 Accepted');
      assert.equal(await c.cmd('RCPT TO:<inbox@postroom.test>'), '250 2.1.5 Accepted');
      assert.match(await c.cmd('DATA'), /^354 /);
      c.write('Subject: fax 3\r\nMessage-ID: <fax3@example.org>\r\n\r\nnumber 3\r\n.\r\n');
      assert.match(await c.reply(), /^250 2\.0\.0 Ok: kept as \w+$/);
      assert.equal(await count(app), 3);
    } finally {
      c.close();
      await app.close();
    }
  });

  test('nonstandardDataTerminator: for a client not listed, CRLF SP . CRLF and a smuggled transaction stay one message', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const app = await startTestPostroom({ smtp: { nonstandardDataTerminator: ['192.0.2.1'] } });
    try {
      const file = path.join(app.dir, 'payload.eml');
      const smuggled = ['MAIL FROM:<evil@attacker.example>', 'RCPT TO:<inbox@postroom.test>', 'DATA', 'Subject: smuggled', '', 'pay'].join('\r\n');
      writeFileSync(file, `Subject: carrier\r\nMessage-ID: <c@example.org>\r\n\r\nhello\r\n .\r\n${smuggled}\r\n.\r\n.`, 'latin1');
      const r = await swaks(app.smtpPort, ['--from', 'a@example.org', '--to', 'inbox@postroom.test', '--no-data-fixup', '--data', `@${file}`]);
      const kept = r.replies.filter((l) => /^250 2\.0\.0 Ok: kept as \w+$/.test(l));
      assert.equal(kept.length, 1, r.out);
      assert.equal(await count(app), 1);
      const raw = await rawOf(app, kept[0].split(' ').pop()!);
      assert.ok(raw.includes('hello\r\n .\r\nMAIL FROM:<evil@attacker.example>\r\n'), 'the look-alike and the smuggled commands are content');
    } finally {
      await app.close();
    }
  });

  test('nonstandardDataTerminator: a listed client still cannot end DATA with a bare-LF form (550 5.5.2)', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const app = await startTestPostroom({ smtp: { nonstandardDataTerminator: ['127.0.0.1'] } });
    try {
      for (const end of ['\n .\n', '\r\n .\n', '\n .\r\n']) {
        const file = path.join(app.dir, 'payload.eml');
        writeFileSync(file, smugglingPayload(end), 'latin1');
        const r = await swaks(app.smtpPort, ['--from', 'a@example.org', '--to', 'inbox@postroom.test', '--no-data-fixup', '--data', `@${file}`]);
        assert.deepEqual(r.replies.slice(-2), [REFUSED, '221 2.0.0 Bye'], `${JSON.stringify(end)}:\n${r.out}`);
      }
      assert.equal(await count(app), 0);
    } finally {
      await app.close();
    }
  });
});
