import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { rmSync, statfsSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { freePort, requirePeer, tempDir, waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { RawSmtp, swaks } from '../helpers/swaks.js';
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

const SLOW_CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'slow-client.py');

interface SlowRun {
  replies: string[];
  sent: number;
  end: string;
  seconds: number;
  closed: boolean;
}

/** slow-client.py (a raw-socket Python client) against the listener. */
async function slowClient(port: number, args: string[]): Promise<SlowRun> {
  return JSON.parse(await python(await readFile(SLOW_CLIENT, 'utf8'), [String(port), ...args], 120_000)) as SlowRun;
}

async function count(app: TestPostroom): Promise<number> {
  const r = await app.db.kysely.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

describe('hostile SMTP input, with swaks', () => {
  test('answers an unknown MAIL FROM parameter with 555 5.5.4 (RFC 5321 §4.1.1.11) and keeps nothing', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    await withPostroom({}, async (app) => {
      // swaks wraps --from in <>: the '>' inside closes the address, what follows is a parameter.
      const r = await swaks(app.smtpPort, ['--from', 'a@example.org> FOO=bar', '--to', 'inbox@postroom.test']);
      assert.notEqual(r.code, 0);
      assert.ok(r.replies.includes('555 5.5.4 MAIL FROM parameter FOO not recognized or not implemented'), r.out);
      assert.equal(await count(app), 0);
      // The parameters we advertise still pass (Python smtplib adds SIZE= itself).
      if (!requirePeer(t, 'python3')) return;
      const ok = await python(
        "import smtplib,sys\ns=smtplib.SMTP('127.0.0.1',int(sys.argv[1]))\ns.ehlo('c.example.org')\nprint(s.sendmail('a@example.org',['inbox@postroom.test'],b'Subject: x\\r\\n\\r\\nx\\r\\n',mail_options=['BODY=8BITMIME','SMTPUTF8']))",
        [String(app.smtpPort)],
      );
      assert.equal(ok.trim(), '{}');
      assert.equal(await count(app), 1);
    });
  });

  test('answers a RCPT TO parameter of an extension not offered (DSN NOTIFY) with 555 5.5.4', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    await withPostroom({}, async (app) => {
      const r = await swaks(app.smtpPort, ['--from', 'a@example.org', '--to', 'inbox@postroom.test> NOTIFY=NEVER']);
      assert.notEqual(r.code, 0);
      assert.ok(r.replies.includes('555 5.5.4 RCPT TO parameter NOTIFY not recognized or not implemented'), r.out);
      assert.equal(await count(app), 0);
    });
  });

  // Short limits in the config keep these quick; the defaults are 10 min, 1 KiB/s after 30 s.
  const pace = { dataTimeout: '60s', minDataRate: '1KiB', minDataRateGrace: '1s', socketTimeout: '60s' };

  test('ends a DATA that trickles one byte at a time with 421 4.4.2 and closes, though every byte resets the idle timeout', async (t) => {
    if (!requirePeer(t, 'python3')) return;
    await withPostroom({ smtp: pace }, async (app) => {
      const r = await slowClient(app.smtpPort, ['trickle', '200', '40']);
      const last = r.replies.at(-1) ?? '';
      assert.match(last, /^421 4\.4\.2 DATA too slow: \d+ bytes in [\d.]+ s, under 1024 bytes\/s \(smtp\.minDataRate\); closing connection$/, JSON.stringify(r));
      assert.ok(r.closed, 'the server closed the connection');
      assert.equal(await count(app), 0);
    });
  });

  test('ends a DATA still running after dataTimeout with 421 4.4.2, however fast it flows', async (t) => {
    if (!requirePeer(t, 'python3')) return;
    await withPostroom({ smtp: { ...pace, dataTimeout: '2s' } }, async (app) => {
      const r = await slowClient(app.smtpPort, ['steady', '20000', '30']);
      assert.equal(r.replies.at(-1), '421 4.4.2 DATA not complete after 2 s (smtp.dataTimeout); closing connection', JSON.stringify(r));
      assert.ok(r.seconds < 30, `cut off before the client finished (${r.seconds} s)`);
      assert.equal(await count(app), 0);
    });
  });

  test('keeps a message from a slow but steady client above minDataRate (a real MTA on a slow link)', async (t) => {
    if (!requirePeer(t, 'python3')) return;
    await withPostroom({ smtp: pace }, async (app) => {
      const r = await slowClient(app.smtpPort, ['steady', '3000', '4']);
      assert.match(r.replies.at(-1) ?? '', /^250 2\.0\.0 Ok: kept as /, JSON.stringify(r));
      assert.equal(await count(app), 1);
    });
  });

  test('closes the connection after the 421 for an over-long line instead of reading what follows', async (t) => {
    if (!requirePeer(t, 'python3')) return;
    await withPostroom({}, async (app) => {
      const r = await slowClient(app.smtpPort, ['longline', String(256 * 1024 * 1024)]);
      assert.ok(r.replies.includes('421 4.4.2 Error: Command line too long'), JSON.stringify(r));
      // What the kernel's socket buffers hold on both sides, not the whole 256 MiB line.
      assert.ok(r.sent < 32 * 1024 * 1024, `the client could write ${r.sent} bytes after the limit`);
      assert.notEqual(r.end, 'wrote all');
    });
  });

  test('refuses connections from one IP past maxClientsPerIp with 421 4.7.0; another IP still gets in', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    await withPostroom({ smtp: { maxClientsPerIp: 2 } }, async (app) => {
      const held = [await RawSmtp.connect(app.smtpPort), await RawSmtp.connect(app.smtpPort)];
      try {
        for (const c of held) assert.match(await c.reply(), /^220 /);
        const r = await swaks(app.smtpPort, ['--from', 'a@example.org', '--to', 'inbox@postroom.test']);
        assert.notEqual(r.code, 0);
        assert.deepEqual(r.replies, ['421 4.7.0 Too many connections from your address; try again later']);
        // 127.0.0.2 is loopback too, and another client to the listener.
        const other = await swaks(app.smtpPort, ['--local-interface', '127.0.0.2', '--from', 'a@example.org', '--to', 'inbox@postroom.test']);
        assert.equal(other.code, 0, other.out);
      } finally {
        held.forEach((c) => c.close());
      }
      // The limit counts open connections: once they close the address may connect again.
      await waitFor(async () => (await swaks(app.smtpPort, ['--from', 'a@example.org', '--to', 'inbox@postroom.test'])).code === 0, 'a new connection once the held ones closed', 30_000);
      assert.equal(await count(app), 2);
    });
  });

  // The 554 5.5.1 for an early talker is pinned in swaks-smtp-auth.test.ts (a delayed greeting).
  test('with no greeting delay, an early command waits for the greeting and is answered after it', async () => {
    await withPostroom({ smtp: { greetingDelay: { allowlisted: 0 } } }, async (app) => {
      const c = await RawSmtp.connect(app.smtpPort);
      try {
        c.write('EHLO early.example.org\r\n');
        assert.match(await c.reply(), /^220 mx\.postroom\.test /);
        assert.match(await c.reply(), /^250-mx\.postroom\.test /);
      } finally {
        c.close();
      }
    });
  });

  /** A message with `n` Received: headers, as n relays would have left it. */
  const withReceived = (n: number) =>
    Array.from({ length: n }, (_, i) => `Received: from hop${i}.example.org by hop${i + 1}.example.org; Sat, 21 Nov 2026 06:00:00 +0000`).join('\n');

  test('refuses a message with 51 Received: headers (over smtp.maxReceived) with 554 5.4.6 at the end of DATA; 50 are kept', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    await withPostroom({}, async (app) => {
      const send = (n: number) => swaks(app.smtpPort, ['--from', 'a@example.org', '--to', 'inbox@postroom.test', '--add-header', withReceived(n)]);
      const r = await send(51);
      assert.notEqual(r.code, 0);
      assert.ok(r.replies.includes('554 5.4.6 Routing loop detected: 51 Received: headers, more than 50 (smtp.maxReceived)'), r.out);
      assert.equal(await count(app), 0);
      const ok = await send(50);
      assert.equal(ok.code, 0, ok.out);
      assert.equal(await count(app), 1);
    });
  });

  test('a route forwarding to our own SMTP listener stops after maxPasses (2) copies: the next is refused 554 5.4.6, and no DSN', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    // The route needs the listener's port before it starts.
    const port = await freePort();
    // dedup: false, so that the pass count is what stops it: with dedup on, the copy coming
    // back is the same message through another hop and is not forwarded again (next test).
    const routes = [
      { name: 'loop', dedup: false, match: { recipient: 'loop@postroom.test' }, deliver: [{ forward: { host: '127.0.0.1', port, starttls: 'never' as const, timeout: '10s' } }] },
    ];
    await withPostroom({ smtp: { listen: `127.0.0.1:${port}` }, routes }, async (app) => {
      const r = await swaks(port, ['--from', 'sender@example.org', '--to', 'loop@postroom.test', '--header', 'Subject: round and round']);
      assert.equal(r.code, 0, r.out);
      // Both outcomes: the second copy's refusal can be recorded before the first copy's forward
      // (whose answer was the second copy's 250) has written its own `done`.
      const refused = await waitFor(
        async () => {
          const all = await app.db.kysely.selectFrom('deliveries').selectAll().execute();
          const failed = all.find((d) => d.status !== 'pending' && d.status !== 'done');
          return failed && all.some((d) => d.status === 'done') ? failed : undefined;
        },
        'a forward that is refused, and the first one done',
        60_000,
      );
      assert.match(refused.last_error ?? '', /5\.4\.6 .*Routing loop detected: the message has passed this Postroom 2 times/);
      const rows = await app.db.kysely.selectFrom('messages').select(['ingress', 'mail_from']).execute();
      assert.equal(rows.length, 2, `copies kept: ${JSON.stringify(rows)}`);
      assert.ok(rows.every((m) => m.ingress === 'smtp' && m.mail_from === 'sender@example.org'), 'no DSN was kept for the sender');
      const done = await app.db.kysely.selectFrom('deliveries').select('status').where('status', '=', 'done').execute();
      assert.equal(done.length, 1, 'the first copy was forwarded once');
    });
  });

  test('with dedup on (the default), the copy a self-forward brings back is kept as a duplicate and not forwarded again', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const port = await freePort();
    const routes = [
      { name: 'loop', match: { recipient: 'loop@postroom.test' }, deliver: [{ forward: { host: '127.0.0.1', port, starttls: 'never' as const, timeout: '10s' } }] },
    ];
    await withPostroom({ smtp: { listen: `127.0.0.1:${port}` }, routes }, async (app) => {
      const r = await swaks(port, ['--from', 'sender@example.org', '--to', 'loop@postroom.test', '--header', 'Subject: once around']);
      assert.equal(r.code, 0, r.out);
      const rows = await waitFor(async () => {
        const m = await app.db.kysely.selectFrom('messages').select(['id', 'duplicate_of']).orderBy('id').execute();
        return m.length === 2 && m[1].duplicate_of ? m : undefined;
      }, 'the copy that came back, marked as a duplicate', 60_000);
      assert.equal(rows[1].duplicate_of, rows[0].id);
      const deliveries = await app.db.kysely.selectFrom('deliveries').select(['message', 'status']).execute();
      assert.deepEqual(deliveries.map((d) => [d.message, d.status]), [[rows[0].id, 'done']]);
    });
  });

  const routed = { domains: ['postroom.test'] };
  const inboxOnly = [{ name: 'inbox', match: { recipient: 'inbox@postroom.test' }, deliver: [{ discard: {} }] }];

  test('accepts postmaster@ every configured domain and bare postmaster at RCPT though no route takes them, and keeps the mail (RFC 5321 §4.5.1)', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    await withPostroom({ smtp: routed, routes: inboxOnly }, async (app) => {
      const nobody = await swaks(app.smtpPort, ['--from', 'a@example.org', '--to', 'nobody@postroom.test']);
      assert.ok(nobody.replies.some((l) => l.startsWith('550 5.1.1')), nobody.out);
      for (const to of ['postmaster@postroom.test', 'PostMaster@postroom.test', 'postmaster']) {
        const r = await swaks(app.smtpPort, ['--from', 'a@example.org', '--to', to]);
        assert.equal(r.code, 0, r.out);
      }
      const elsewhere = await swaks(app.smtpPort, ['--from', 'a@example.org', '--to', 'postmaster@elsewhere.test']);
      assert.ok(elsewhere.replies.some((l) => l.startsWith('554 5.7.1')), elsewhere.out);
      const rows = await app.db.kysely.selectFrom('messages').select('rcpt_to').execute();
      assert.deepEqual(rows.map((r) => JSON.parse(String(r.rcpt_to))).sort(), [['PostMaster@postroom.test'], ['postmaster'], ['postmaster@postroom.test']]);
    });
  });

  test('with smtp.postmaster, mail for postmaster@ is kept for that address and its route delivers it', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const routes = [...inboxOnly, { name: 'ops', match: { recipient: 'ops@postroom.test' }, deliver: [{ discard: {} }] }];
    await withPostroom({ smtp: { ...routed, postmaster: 'ops@postroom.test' }, routes }, async (app) => {
      const r = await swaks(app.smtpPort, ['--from', 'a@example.org', '--to', 'postmaster@postroom.test']);
      assert.equal(r.code, 0, r.out);
      const d = await waitFor(async () => app.db.kysely.selectFrom('deliveries').select(['route', 'status', 'recipients']).where('status', '=', 'done').executeTakeFirst(), 'the ops route to deliver');
      assert.equal(d.route, 'ops');
      assert.deepEqual(JSON.parse(d.recipients), ['ops@postroom.test']);
    });
  });

  test('refuses MAIL with 452 4.3.1 when the data directory lacks room for the declared SIZE plus minFreeSpace, before any data', async (t) => {
    if (!requirePeer(t, 'swaks', 'python3')) return;
    const disk = tempDir('postroom-tmpfs-');
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', disk.dir]);
    } catch (err) {
      disk.cleanup();
      if (process.env.CI === 'true') throw err;
      return t.skip(`cannot mount a tmpfs here (needs root): ${(err as Error).message}`);
    }
    try {
      await withPostroom({ dataDir: disk.dir, smtp: { minFreeSpace: '8MiB' } }, async (app) => {
        const send = () => swaks(app.smtpPort, ['--from', 'a@example.org', '--to', 'inbox@postroom.test']);
        assert.equal((await send()).code, 0, 'room enough: kept');
        // Python smtplib declares SIZE= (RFC 1870) as an MTA does: 45 MiB + 8 MiB will not fit in 48 MiB.
        const declared = await python(
          "import smtplib,sys\ns=smtplib.SMTP('127.0.0.1',int(sys.argv[1]))\ns.ehlo('c.example.org')\nprint(s.mail('a@example.org',['SIZE=47185920']))",
          [String(app.smtpPort)],
        );
        assert.equal(declared.trim(), "(452, b'4.3.1 Insufficient system storage; try again later')");
        // The disk fills up (something else writes there): MAIL without SIZE is refused too.
        const filler = path.join(disk.dir, 'filler');
        const free = () => statfsSync(disk.dir).bavail * statfsSync(disk.dir).bsize;
        writeFileSync(filler, Buffer.alloc(free() - 4 * 1024 * 1024));
        const full = await waitFor(async () => {
          const r = await send();
          return r.replies.includes('452 4.3.1 Insufficient system storage; try again later') ? r : undefined;
        }, 'MAIL refused on the full disk');
        assert.ok(!full.out.includes('354 '), 'refused before DATA');
        assert.equal(await count(app), 1);
        rmSync(filler);
        await waitFor(async () => (await send()).code === 0, 'MAIL accepted once there is room again');
        assert.equal(await count(app), 2);
      });
    } finally {
      execFileSync('umount', [disk.dir]);
      disk.cleanup();
    }
  });
});
