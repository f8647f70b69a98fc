import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { freePort, requirePeer, tempDir, testBackend, waitFor } from '../helpers/env.js';
import { startPrivatePostgres } from '../helpers/private-postgres.js';
import { serveStarter } from '../helpers/serve-child.js';
import { RawSmtp } from '../helpers/swaks.js';
import { assertKeptOnce, keptByMessageId, showSent, witness, type Sent } from '../helpers/swaks-witness.js';

// The database goes away under a running `postroom serve` (PostgreSQL killed with
// `pg_ctl stop -m immediate`, as a crash or a failover does): nothing can be kept, so every
// message must get a transient 4xx (never a 250, never a hang), the server must stay
// up, and once PostgreSQL is back it accepts mail again on its own, with every 250 kept exactly
// once, also across a restart. A PostgreSQL of the test's own: the machine's is shared.

it('PostgreSQL goes down and comes back: 451 4.3.0 while it is down, nothing acknowledged that is not kept, and serve recovers by itself', { timeout: 110_000 }, async (t) => {
  if (!requirePeer(t, 'postgres-server', 'swaks')) return;
  if (testBackend() !== 'postgres') return t.skip('a PostgreSQL fault: runs with the PostgreSQL run of the suite');
  const pg = await startPrivatePostgres();
  t.after(() => pg.cleanup());
  const tmp = tempDir('pg-down-');
  t.after(tmp.cleanup);
  const smtpPort = await freePort();
  const httpPort = await freePort();
  const config = path.join(tmp.dir, 'postroom.yaml');
  writeFileSync(
    config,
    JSON.stringify({
      dataDir: path.join(tmp.dir, 'data'),
      log: { level: 'warn' },
      smtp: { listen: `127.0.0.1:${smtpPort}` },
      http: { listen: `127.0.0.1:${httpPort}` },
      store: { database: pg.url },
    }),
  );
  const serve = serveStarter(t, ['--config', config], {}, tmp.dir);
  // 2 KiB and 300 KiB (more than one blob chunk, staged under DATA_DIR/staging while DATA runs).
  const mail = witness(smtpPort, tmp.dir, 'pgdown', (k) => (k % 2 ? 300 * 1024 : 2048));

  const server = await serve();
  for (let i = 0; i < 3; i++) {
    const s = await mail.send();
    assert.ok(s.accepted, showSent(s));
  }

  // A transaction in the middle of DATA when the database dies (a raw client: swaks cannot pause).
  const midData = await RawSmtp.connect(smtpPort);
  t.after(() => midData.close());
  assert.match(await midData.reply(30_000), /^220 /);
  assert.match(await midData.cmd('EHLO client.test'), /^250/);
  assert.match(await midData.cmd('MAIL FROM:<chaos@client.test>'), /^250 /);
  assert.match(await midData.cmd('RCPT TO:<rcpt@postroom.test>'), /^250 /);
  assert.match(await midData.cmd('DATA'), /^354 /);
  midData.write('From: chaos@client.test\r\nSubject: chaos pgdown mid-DATA\r\nMessage-ID: <chaos-pgdown-mid@client.test>\r\n\r\n');
  midData.write(`${'m'.repeat(76)}\r\n`.repeat(2000));

  await pg.crash();
  midData.write(`${'m'.repeat(76)}\r\n`.repeat(2000));
  midData.write('.\r\n');
  const midReply = await midData.reply(30_000);
  assert.match(midReply, /^451 4\.3\.0 /, 'the transaction in DATA when the database died gets a 451, not a hang');
  midData.close();
  const refused: Sent[] = [];
  for (let i = 0; i < 4; i++) {
    const s = await mail.send();
    assert.equal(s.accepted, undefined, `no 250 while the database is down: ${showSent(s)}`);
    assert.match(s.refused ?? '', /^4\d\d 4\.\d\.\d /, `a transient 4xx, not a hang or a 5xx: ${showSent(s)}`);
    refused.push(s);
  }
  // A 451 at the end of DATA is what an MTA queues and retries.
  for (const s of refused) assert.match(s.refused!, /^451 4\.3\.0 /, showSent(s));
  assert.equal(server.child.exitCode, null, `serve stays up while the database is down:\n${server.stderr()}`);

  await pg.start();
  // The pool reconnects by itself: no restart. Each try is a new message; one refused while the
  // pool finds its feet is fine (checked below like every other).
  await waitFor(async () => (await mail.send()).accepted, 'serve to accept mail again once PostgreSQL is back', 60_000);
  // Nothing refused while the database was down was kept: there was nowhere to keep it.
  const kept = await keptByMessageId(httpPort, server.token);
  for (const s of refused) assert.equal(kept.get(s.messageId), undefined, `message ${s.n} was refused and is not kept`);
  assert.equal(kept.get('<chaos-pgdown-mid@client.test>'), undefined, 'the message in DATA when the database died is not kept');
  // The sender retries what got a 451, as an MTA does; then more mail.
  for (const s of refused) assert.ok((await mail.send(s.n)).accepted, `the retry is accepted: ${showSent(mail.all().find((x) => x.n === s.n)!)}`);
  for (let i = 0; i < 2; i++) {
    const s = await mail.send();
    assert.ok(s.accepted, showSent(s));
  }

  await assertKeptOnce(httpPort, server.token, mail.all());
  server.child.kill('SIGTERM');
  assert.equal(await server.exited, 0, `clean stop after the outage:\n${server.stderr()}`);
  const again = await serve();
  await assertKeptOnce(httpPort, again.token, mail.all());
  t.diagnostic(`${mail.all().filter((s) => s.accepted).length} of ${mail.all().length} messages acknowledged and kept once; ${refused.length} refused with 451 while PostgreSQL was down`);
  again.child.kill('SIGTERM');
  assert.equal(await again.exited, 0);
});
