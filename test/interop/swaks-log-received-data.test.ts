import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { hashPassword } from '../../src/core/passwords.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { selfSignedCert } from '../fixtures/tls/self-signed.js';
import { missingPeers, requirePeer, tempDir, waitFor } from '../helpers/env.js';
import { startTestPostroom } from '../helpers/postroom.js';
import { swaks } from '../helpers/swaks.js';

/**
 * smtp.logReceivedData (the fax gateway's log_rcv_data), with swaks as the client: AUTH PLAIN
 * and AUTH LOGIN over STARTTLS, and the daily file smtp_YYMMDD.log holding the dialogue and
 * the message, never the password nor its base64.
 */
const PASSWORD = 'Tr0ub4dor&3-horse';
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
let tls: { key: string; cert: string };
let users: Array<{ username: string; password: string }>;

before(async () => {
  if (missingPeers('openssl').length) return;
  const dir = tempDir('postroom-tls-');
  process.on('exit', dir.cleanup);
  tls = selfSignedCert(dir.dir);
  users = [{ username: 'desk@shop.example', password: await hashPassword(PASSWORD) }];
});

function logLines(dir: string): Array<Record<string, unknown>> {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /^smtp_\d{6}\.log$/.test(f))
    .flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function withPostroom(smtp: ConfigInput['smtp'], run: (port: number, logDir: string) => Promise<void>): Promise<void> {
  const logs = tempDir('postroom-smtplog-');
  const app = await startTestPostroom({
    smtp: { clients: ['192.0.2.1'], tls, auth: { users }, ...smtp },
    log: { level: 'silent', file: { dir: logs.dir, level: 'debug' } },
  });
  try {
    await run(app.smtpPort, logs.dir);
  } finally {
    await app.close();
    logs.cleanup();
  }
}

const send = (mech: string) => [
  '-tls', '--auth', mech, '--auth-user', 'desk@shop.example', '--auth-password', PASSWORD,
  '--from', 'desk@shop.example', '--to', '420111@fax', '--header', 'Subject: fax for the trace', '--body', 'Body-marker-7731',
];

describe('smtp.logReceivedData, with swaks over STARTTLS', () => {
  for (const mech of ['PLAIN', 'LOGIN']) {
    test(`AUTH ${mech}: the file has the dialogue and the message, never the password or its base64`, async (t) => {
      if (!requirePeer(t, 'swaks', 'openssl')) return;
      await withPostroom({ logReceivedData: { enabled: true } }, async (port, dir) => {
        const run = await swaks(port, send(mech));
        assert.equal(run.code, 0, run.out);
        // The session's last line (QUIT) is written when the connection closes.
        const lines = await waitFor(() => {
          const l = logLines(dir).filter((x) => x.msg === 'smtp received data');
          return l.length >= 2 ? l : undefined;
        }, 'both received-data lines');
        const tx = logLines(dir).find((x) => x.msg === 'smtp transaction');
        assert.equal(tx?.outcome, 'accepted');
        const [first, last] = lines;
        assert.equal(first.id, tx?.id, 'the data line names the kept message');
        const dialogue = first.dialogue as string[];
        assert.equal(dialogue[0], 'EHLO ' + dialogue[0].slice(5));
        assert.ok(dialogue.includes('STARTTLS'), JSON.stringify(dialogue));
        assert.ok(dialogue.includes(`AUTH ${mech}`) || dialogue.includes(`AUTH ${mech} ****`), JSON.stringify(dialogue));
        if (mech === 'LOGIN') assert.ok(dialogue.filter((d) => d === '****').length >= 1, JSON.stringify(dialogue));
        assert.ok(dialogue.includes('MAIL FROM:<desk@shop.example>'), JSON.stringify(dialogue));
        assert.ok(dialogue.includes('RCPT TO:<420111@fax>'), JSON.stringify(dialogue));
        assert.equal(dialogue.at(-1), 'DATA');
        assert.match(first.data as string, /Subject: fax for the trace\r\n/);
        assert.match(first.data as string, /Body-marker-7731/);
        assert.equal(first.dataBytes, Buffer.byteLength(first.data as string));
        assert.deepEqual(last.dialogue, ['QUIT']);
        const file = readdirSync(dir).map((f) => readFileSync(path.join(dir, f), 'utf8')).join('');
        for (const secret of [PASSWORD, b64(PASSWORD), b64(`\0desk@shop.example\0${PASSWORD}`), b64('desk@shop.example')]) {
          assert.ok(!file.includes(secret), `the log holds ${secret}`);
        }
      });
    });
  }

  test('maxBytes cuts the message and says so', async (t) => {
    if (!requirePeer(t, 'swaks', 'openssl')) return;
    await withPostroom({ logReceivedData: { enabled: true, maxBytes: 16 } }, async (port, dir) => {
      const run = await swaks(port, send('PLAIN'));
      assert.equal(run.code, 0, run.out);
      const first = await waitFor(() => logLines(dir).find((x) => x.msg === 'smtp received data' && x.data), 'the data line');
      assert.equal(Buffer.byteLength(first.data as string), 16);
      assert.equal(first.dataTruncated, true);
      assert.ok((first.dataBytes as number) > 16);
    });
  });

  test('off by default: the transaction is logged, nothing of the dialogue or the message', async (t) => {
    if (!requirePeer(t, 'swaks', 'openssl')) return;
    await withPostroom({}, async (port, dir) => {
      const run = await swaks(port, send('PLAIN'));
      assert.equal(run.code, 0, run.out);
      await waitFor(() => logLines(dir).find((x) => x.msg === 'smtp transaction'), 'the transaction line');
      const file = readdirSync(dir).map((f) => readFileSync(path.join(dir, f), 'utf8')).join('');
      assert.ok(!file.includes('smtp received data'), file);
      assert.ok(!file.includes('Body-marker-7731') && !file.includes('fax for the trace') && !file.includes('STARTTLS'), file);
    });
  });
});
