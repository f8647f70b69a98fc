import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { it } from 'node:test';
import Database from 'better-sqlite3';
import { freePort, tempDir, testBackend, waitFor } from '../helpers/env.js';
import { startServeChild, type ServeChild } from '../helpers/serve-child.js';

// After a kill -9 the deliveries the dead `postroom serve` had leased are taken back when the
// next one starts on the same store, not after the rest of the lease (here 10 minutes, so only
// the take-back can explain a delivery within the test's bounds).

const RAW = 'From: a@example.org\r\nTo: hook@postroom.test\r\nSubject: lease\r\nMessage-ID: <lease-1@example.org>\r\n\r\nbody\r\n';

it('a serve killed with SIGKILL mid-delivery: the next serve retries its leased delivery at start, not after the lease', async (t) => {
  if (testBackend() !== 'sqlite') return t.skip('single node on SQLite; on PostgreSQL several nodes may hold leases, so only this host\'s dead processes are taken back (same code path)');
  const tmp = tempDir();
  t.after(tmp.cleanup);
  // The webhook: the first request hangs (the server is killed while it waits), later ones answer 204.
  let requests = 0;
  const hook = http.createServer((req, res) => {
    requests++;
    req.resume();
    if (requests === 1) return; // never answers
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  t.after(() => {
    hook.closeAllConnections();
    hook.close();
  });
  const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/in`;
  const dataDir = path.join(tmp.dir, 'data');
  const configFile = path.join(tmp.dir, 'postroom.yaml');
  writeFileSync(
    configFile,
    [
      'log:',
      '  level: warn',
      'delivery:',
      '  leaseTime: 10m',
      'routes:',
      '  - name: hook',
      "    match: { recipient: 'hook@postroom.test' }",
      '    deliver:',
      `      - webhook: { url: '${hookUrl}', allowPrivate: true, timeout: 10m }`,
      '',
    ].join('\n'),
  );
  const httpPort = await freePort();
  const env = { POSTROOM_DATA_DIR: dataDir, POSTROOM_SMTP_LISTEN: `127.0.0.1:${await freePort()}`, POSTROOM_HTTP_LISTEN: `127.0.0.1:${httpPort}` };
  const children: ServeChild[] = [];
  t.after(() => children.forEach((c) => c.child.kill('SIGKILL')));
  const serve = async () => {
    const c = await startServeChild(['--config', configFile], env, tmp.dir);
    children.push(c);
    return c;
  };

  const first = await serve();
  const res = await fetch(`http://127.0.0.1:${httpPort}/api/v1/inbound?recipient=hook@postroom.test&sender=a@example.org`, {
    method: 'POST',
    headers: { authorization: `Bearer ${first.token}`, 'content-type': 'message/rfc822' },
    body: RAW,
  });
  assert.equal(res.status, 202, await res.text());
  await waitFor(() => requests === 1, 'the first webhook request (which hangs)', 20_000);

  const db = new Database(path.join(dataDir, 'postroom.db'), { readonly: true });
  t.after(() => db.close());
  const row = () => db.prepare("SELECT status, attempts, lease_owner, lease_until FROM deliveries WHERE route = 'hook'").get() as
    | { status: string; attempts: number; lease_owner: string | null; lease_until: string | null }
    | undefined;
  const leased = row();
  assert.equal(leased?.status, 'pending');
  assert.match(leased?.lease_owner ?? '', new RegExp(`:${first.child.pid}:`), 'leased by the first serve');
  assert.ok(Date.parse(leased!.lease_until!) - Date.now() > 5 * 60_000, 'a lease of 10 minutes');

  first.child.kill('SIGKILL');
  assert.equal(await first.exited, 'SIGKILL');

  const second = await serve();
  // Taken back at start: delivered within seconds, though the dead lease had ~10 minutes to run.
  await waitFor(() => row()?.status === 'done', 'the delivery to be retried by the new serve', 30_000);
  assert.equal(requests, 2);
  const done = row()!;
  assert.equal(done.attempts, 2, 'the killed attempt counts');
  assert.equal(done.lease_owner, null);
  second.child.kill('SIGTERM');
  assert.equal(await second.exited, 0, second.stderr());
});
