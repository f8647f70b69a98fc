import assert from 'node:assert/strict';
import { existsSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { sql } from 'kysely';
import { freePort, requirePeer, tempDir, testBackend, waitFor } from '../helpers/env.js';
import { startTestPostroom } from '../helpers/postroom.js';
import { startServeChild } from '../helpers/serve-child.js';
import { swaks } from '../helpers/swaks.js';

const metric = async (metrics: { registry: { getSingleMetricAsString(n: string): Promise<string> } }, kind: string) =>
  Number(new RegExp(`kind="${kind}"} (\\d+)`).exec(await metrics.registry.getSingleMetricAsString('postroom_sweep_removed_total'))?.[1] ?? 0);

/** Every blob file under DATA_DIR/blobs/ab/. */
function blobFiles(dataDir: string): string[] {
  const root = path.join(dataDir, 'blobs');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((d) => /^[0-9a-f]{2}$/.test(d))
    .flatMap((d) => readdirSync(path.join(root, d)).map((f) => path.join(root, d, f)));
}

describe('leftovers of faults are swept: orphan blobs and staging files of dead processes', { timeout: 180_000 }, () => {
  const tmp = tempDir('sweep-');
  after(() => tmp.cleanup());

  it('kill -9 of serve during DATA: its staging file is removed at the next start, counted in the metric', async (t) => {
    if (testBackend() !== 'sqlite') return t.skip('the file store stages under DATA_DIR/blobs/tmp; on PostgreSQL under DATA_DIR/staging, same code');
    const dataDir = path.join(tmp.dir, 'killed');
    const smtpPort = await freePort();
    const httpPort = await freePort();
    const config = path.join(tmp.dir, 'killed.yaml');
    writeFileSync(config, JSON.stringify({ dataDir, log: { level: 'info' }, smtp: { listen: `127.0.0.1:${smtpPort}` }, http: { listen: `127.0.0.1:${httpPort}` } }));
    const first = await startServeChild(['--config', config], {}, tmp.dir);
    const staging = path.join(dataDir, 'blobs', 'tmp');
    // A client (a plain socket, like smtp-source's) in the middle of DATA: 1 MiB sent, no end.
    const sock = net.connect(smtpPort, '127.0.0.1');
    sock.on('error', () => {});
    let got = '';
    sock.setEncoding('utf8').on('data', (d: string) => (got += d));
    const expect = (re: RegExp) => waitFor(() => re.test(got), `the server to answer ${re}`, 30_000);
    await expect(/^220 /m);
    sock.write('EHLO crash.test\r\nMAIL FROM:<a@crash.test>\r\nRCPT TO:<b@crash.test>\r\nDATA\r\n');
    await expect(/^354 /m);
    sock.write(`Subject: killed mid-DATA\r\n\r\n${`${'z'.repeat(998)}\r\n`.repeat(1024)}`);
    const left = await waitFor(() => {
      const l = existsSync(staging) ? readdirSync(staging).filter((n) => n.startsWith(`p${first.child.pid}-`)) : [];
      return l.length ? l : undefined;
    }, 'a staging file of the serving process', 30_000);
    first.child.kill('SIGKILL');
    await first.exited;
    sock.destroy();
    assert.ok(left.length >= 1 && left.every((n) => existsSync(path.join(staging, n))), `left behind: ${left.join()}`);
    const second = await startServeChild(['--config', config], {}, tmp.dir);
    try {
      await waitFor(() => left.every((n) => !existsSync(path.join(staging, n))), 'the sweep at start to remove the dead process\'s staging file', 30_000);
      // Counted once the whole sweep (all blob directories too) is done.
      const scrape = async () => (await fetch(`http://127.0.0.1:${httpPort}/metrics`, { headers: { authorization: `Bearer ${second.token}` } })).text();
      await waitFor(async () => /postroom_sweep_removed_total\{kind="staging"\} [1-9]/.test(await scrape()), 'the staging file counted in postroom_sweep_removed_total', 30_000);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });

  it('a transaction that fails after the blob was renamed into place (an injected trigger): the sender gets 451, and the orphan is swept once past the grace period, never a kept one', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const app = await startTestPostroom({ store: { sweep: { interval: 0 } } });
    try {
      // A real database failure inside the intake transaction, after the blob file was renamed into place.
      if (app.db.dialect === 'sqlite') {
        await sql`create trigger fail_me before insert on messages when new.subject = 'fail me' begin select raise(abort, 'injected failure'); end`.execute(app.db.kysely);
      } else {
        await sql`create function fail_me() returns trigger language plpgsql as $$ begin if new.subject = 'fail me' then raise exception 'injected failure'; end if; return new; end $$`.execute(app.db.kysely);
        await sql`create trigger fail_me before insert on messages for each row execute function fail_me()`.execute(app.db.kysely);
      }
      const big = (subject: string) => {
        const f = path.join(tmp.dir, `${subject.replace(/\W/g, '-')}.eml`);
        writeFileSync(f, `Subject: ${subject}\r\nFrom: a@x.test\r\n\r\n${`${subject[0].repeat(998)}\r\n`.repeat(300)}\r\n.\r\n`);
        return ['--from', 'a@x.test', '--to', 'b@x.test', '--suppress-data', '--data', `@${f}`];
      };
      const kept = await swaks(app.smtpPort, big('kept'));
      assert.equal(kept.code, 0, kept.out.slice(-2000));
      const before = blobFiles(app.config.dataDir);
      const failed = await swaks(app.smtpPort, big('fail me'));
      assert.match(failed.out, /451 4\.3\.0/, failed.out.slice(-2000));
      const orphans = blobFiles(app.config.dataDir).filter((f) => !before.includes(f));
      if (app.db.dialect === 'sqlite') assert.equal(orphans.length, 1, 'the renamed blob of the failed message');
      // Young: within the grace period an intake may be about to commit its row; nothing is removed.
      assert.deepEqual(await app.sweeper.run(), { blobs: 0, staging: 0 });
      // Past the grace period (1 h by default): both files look old now; only the orphan goes.
      const old = new Date(Date.now() - 2 * 3_600_000);
      for (const f of blobFiles(app.config.dataDir)) utimesSync(f, old, old);
      if (app.db.dialect === 'postgres') await sql`update blobs set created_at = ${old.toISOString()}`.execute(app.db.kysely);
      const swept = await app.sweeper.run();
      assert.equal(swept.blobs, orphans.length);
      for (const f of orphans) assert.equal(existsSync(f), false, f);
      for (const f of before) assert.equal(existsSync(f), true, `a kept message's blob stays: ${f}`);
      assert.equal(await metric(app.metrics, 'blob'), orphans.length);
      // The kept message is whole.
      const list = (await (await app.api('/api/v1/messages?limit=10')).json()) as { items: { id: string; subject: string }[] };
      const id = list.items.find((m) => m.subject === 'kept')!.id;
      const raw = await (await app.api(`/api/v1/messages/${id}/raw`)).text();
      assert.match(raw, /Subject: kept/);
    } finally {
      await app.close();
    }
  });
});
