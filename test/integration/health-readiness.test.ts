import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { waitFor } from '../helpers/env.js';

type Ready = { status?: string; code?: string; detail?: string; checks: Record<string, string> };

const readyz = async (pr: TestPostroom): Promise<{ status: number; body: Ready; type: string | null }> => {
  const res = await fetch(`${pr.baseUrl}/readyz`);
  return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Ready };
};

/** Make every write to the store fail, as a read-only or full store does; returns the undo. */
async function refuseWrites(pr: TestPostroom): Promise<() => Promise<void>> {
  const db = pr.db.kysely;
  if (pr.db.dialect === 'sqlite') {
    // SQLite has one connection here: query_only makes every write on it fail ("attempt to write a readonly database").
    await sql`PRAGMA query_only = ON`.execute(db);
    return async () => void (await sql`PRAGMA query_only = OFF`.execute(db));
  }
  // PostgreSQL: the pool's connections cannot all be made read-only from here; a trigger refuses
  // the probe's write with the error a read-only transaction gets (25006).
  await sql`create function refuse_write() returns trigger language plpgsql as $$ begin raise exception 'cannot execute UPDATE in a read-only transaction' using errcode = '25006'; end $$`.execute(db);
  await sql`create trigger refuse_write before insert or update on health_probes for each row execute function refuse_write()`.execute(db);
  return async () => {
    await sql`drop trigger refuse_write on health_probes`.execute(db);
    await sql`drop function refuse_write()`.execute(db);
  };
}

describe('GET /livez and /readyz', () => {
  let pr: TestPostroom;
  before(async () => {
    pr = await startTestPostroom();
  });
  after(() => pr?.close());

  test('/livez answers 200 without a token', async () => {
    const res = await fetch(`${pr.baseUrl}/livez`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await res.json(), { status: 'ok' });
  });

  test('/readyz answers 200 without a token after committing a probe row', async () => {
    const r = await readyz(pr);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'ready', checks: { shutdown: 'ok', store: 'ok', listeners: 'ok' } });
    const rows = await pr.db.kysely.selectFrom('health_probes').selectAll().execute();
    assert.equal(rows.length, 1);
    const first = rows[0]!.probed_at;
    await waitFor(async () => {
      await readyz(pr);
      const again = await pr.db.kysely.selectFrom('health_probes').selectAll().execute();
      return again.length === 1 && again[0]!.probed_at !== first;
    }, 'a second probe to rewrite the same row');
  });

  test('/readyz answers 503 STORE_FAILED when the store takes no writes, while /healthz (a read) and /livez still pass', async () => {
    const undo = await refuseWrites(pr);
    try {
      const r = await readyz(pr);
      assert.equal(r.status, 503);
      assert.equal(r.type, 'application/problem+json');
      assert.equal(r.body.code, 'STORE_FAILED');
      assert.equal(r.body.checks.shutdown, 'ok');
      assert.equal(r.body.checks.listeners, 'ok');
      assert.notEqual(r.body.checks.store, 'ok');
      assert.match(r.body.checks.store, /read.?only/i);
      assert.match(r.body.detail!, /^store: /);
      assert.equal((await fetch(`${pr.baseUrl}/healthz`)).status, 200);
      assert.equal((await fetch(`${pr.baseUrl}/livez`)).status, 200);
    } finally {
      await undo();
    }
    assert.equal((await readyz(pr)).status, 200);
  });
});

describe('GET /readyz: listeners and shutdown', () => {
  test('answers 503 NOT_READY naming the SMTP listener once it stops listening', async (t) => {
    const pr = await startTestPostroom();
    t.after(() => pr.close());
    await pr.smtp!.close();
    const r = await readyz(pr);
    assert.equal(r.status, 503);
    assert.equal(r.body.code, 'NOT_READY');
    assert.equal(r.body.checks.listeners, 'smtp is not listening');
    assert.equal(r.body.checks.store, 'ok');
  });

  test('answers 503 SHUTTING_DOWN from the moment stop() begins, while SMTP still drains', async (t) => {
    const pr = await startTestPostroom();
    t.after(() => pr.close());
    assert.equal((await readyz(pr)).status, 200);
    // An idle SMTP session keeps the SMTP listener draining (up to its close timeout), and the
    // HTTP listener open behind it, so /readyz can be asked while the stop is under way.
    const sock = net.connect(pr.smtpPort, '127.0.0.1');
    let said = '';
    sock.setEncoding('utf8').on('data', (d: string) => (said += d));
    sock.on('error', () => {});
    await waitFor(() => said.startsWith('220'), 'the SMTP greeting');
    const stopping = pr.stop();
    try {
      const r = await readyz(pr);
      assert.equal(r.status, 503);
      assert.equal(r.type, 'application/problem+json');
      assert.equal(r.body.code, 'SHUTTING_DOWN');
      assert.equal(r.body.checks.shutdown, 'stopping');
      assert.match(r.body.detail!, /shutdown: stopping/);
    } finally {
      sock.end('QUIT\r\n');
      await stopping;
    }
  });
});
