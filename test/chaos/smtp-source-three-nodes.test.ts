import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { it } from 'node:test';
import pg from 'pg';
import { freePort, requirePeer, tempDir, testBackend, waitFor } from '../helpers/env.js';
import { startServeChild, type ServeChild } from '../helpers/serve-child.js';
import { pgTestSchema } from '../helpers/test-db.js';

// Scale-out: three `postroom serve` processes on one PostgreSQL database, Postfix's
// smtp-source sending 3,000 messages spread over them, one node killed with SIGKILL mid-run and
// restarted. Every message that got a 250 is kept exactly once, and a webhook receiver sees
// every delivery at least once under one stable webhook-id (so it processes each once).
//
// smtp-source reports no per-message outcome, but with -v it prints the dialogue; one session
// per process (-s 1) keeps that dialogue in order, and -N numbers each recipient, so the
// recipient followed by "." and "250" names exactly the message that was acknowledged.

const NODES = 3;
const STREAMS_PER_NODE = 5;
const TOTAL = 3_000;
const PER_STREAM = TOTAL / (NODES * STREAMS_PER_NODE);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Stream {
  node: number;
  /** Recipients whose end of data got a 250, with when. */
  accepted: Map<string, number>;
  /** Messages whose transaction started (RCPT sent). */
  attempted: number;
  /** Recipients sent whose end of data got no 250. */
  unanswered: string[];
  /** Replies other than 250 to the end of data, and how batches ended. */
  refused: string[];
  done: Promise<void>;
}

/** Run smtp-source batches against one node until PER_STREAM messages were attempted. */
function stream(node: number, s: number, port: () => number, stopAt: number): Stream {
  const st: Stream = { node, accepted: new Map(), attempted: 0, unanswered: [], refused: [], done: Promise.resolve() };
  st.done = (async () => {
    for (let batch = 0; st.attempted < PER_STREAM && Date.now() < stopAt; batch++) {
      const tag = `n${node}s${s}b${batch}`;
      const child = spawn(
        'smtp-source',
        ['-v', '-s', '1', '-d', '-N', '-m', String(PER_STREAM - st.attempted), '-l', '4096',
          '-f', 'load@client.test', '-t', `${tag}@postroom.test`, `127.0.0.1:${port()}`],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let rcpt: string | undefined;
      let afterDot = false;
      let buf = '';
      child.stderr!.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const m = /^smtp-source: RCPT TO:<([^>]+)>/.exec(line);
          if (m) {
            if (rcpt && !st.accepted.has(rcpt)) st.unanswered.push(rcpt);
            rcpt = m[1].toLowerCase();
            st.attempted++;
            afterDot = false;
          }
          else if (line === 'smtp-source: .') afterDot = true;
          else if (afterDot && line.startsWith('smtp-source: <<< ')) {
            if (line.startsWith('smtp-source: <<< 250') && rcpt) st.accepted.set(rcpt, Date.now());
            else st.refused.push(`${rcpt}: ${line}`);
            afterDot = false;
          } else if (/fatal|warning|error/i.test(line)) {
            st.refused.push(`${rcpt} (after dot: ${afterDot}): ${line}`);
          }
        }
      });
      const guard = setTimeout(() => child.kill('SIGKILL'), Math.max(0, stopAt - Date.now()));
      await new Promise((r) => child.once('exit', r));
      clearTimeout(guard);
      if (rcpt && !st.accepted.has(rcpt)) st.unanswered.push(rcpt);
      // A node that is down refuses the connection: wait for it to come back.
      if (st.attempted < PER_STREAM) await sleep(100);
    }
  })();
  return st;
}

/** The webhook receiver: records every request, and processes a webhook-id only the first time. */
async function receiver() {
  const requests: { webhookId: string; messageId: string; rcpt: string }[] = [];
  const processed = new Map<string, string>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const doc = JSON.parse(Buffer.concat(chunks).toString()) as { message: { id: string }; envelope: { rcptTo: string[] } };
      const webhookId = String(req.headers['webhook-id']);
      const rcpt = doc.envelope.rcptTo[0].toLowerCase();
      requests.push({ webhookId, messageId: doc.message.id, rcpt });
      if (!processed.has(webhookId)) processed.set(webhookId, rcpt);
      // A little work per call, so that a kill can land while a delivery is in flight.
      setTimeout(() => res.writeHead(204).end(), 2);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    requests,
    processed,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

it('three nodes on one PostgreSQL database: every 250 kept once across a SIGKILL, every delivery seen under one webhook-id', { timeout: 600_000 }, async (t) => {
  if (testBackend() !== 'postgres') {
    return t.skip(`runs on the postgres backend only (this run is ${testBackend()}): three nodes share one PostgreSQL database`);
  }
  if (!requirePeer(t, 'smtp-source')) return;
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const pgs = await pgTestSchema();
  t.after(() => pgs.drop());
  const hooks = await receiver();
  t.after(() => hooks.close());

  const configFile = path.join(tmp.dir, 'postroom.yaml');
  writeFileSync(
    configFile,
    [
      'log: { level: warn }',
      // Short lease: a delivery the killed node had in flight is taken by another within seconds.
      'delivery: { leaseTime: 3s, pollInterval: 200ms, workers: 12 }',
      'routes:',
      '  - name: hook',
      "    match: { recipient: '*@postroom.test' }",
      '    deliver:',
      `      - webhook: { url: '${hooks.url}', format: json, allowPrivate: true, timeout: 10s }`,
      '',
    ].join('\n'),
  );
  const ports = await Promise.all(Array.from({ length: NODES }, async () => ({ smtp: await freePort(), http: await freePort() })));
  const servers: ServeChild[] = [];
  t.after(() => servers.forEach((s) => s.child.kill('SIGKILL')));
  const serve = async (i: number) => {
    const s = await startServeChild(['--config', configFile], {
      POSTROOM_DATA_DIR: path.join(tmp.dir, `node${i}`),
      POSTROOM_SMTP_LISTEN: `127.0.0.1:${ports[i].smtp}`,
      POSTROOM_HTTP_LISTEN: `127.0.0.1:${ports[i].http}`,
      POSTROOM_DATABASE_URL: pgs.url,
    }, tmp.dir);
    servers[i] = s;
    return s;
  };
  // All three start together on an empty schema: one migrates, the others wait for it.
  await Promise.all(Array.from({ length: NODES }, (_, i) => serve(i)));

  const started = Date.now();
  const stopAt = started + 120_000;
  const streams: Stream[] = [];
  for (let n = 0; n < NODES; n++) for (let s = 0; s < STREAMS_PER_NODE; s++) streams.push(stream(n, s, () => ports[n].smtp, stopAt));
  const acceptedSoFar = () => streams.reduce((a, s) => a + s.accepted.size, 0);

  // Kill node 0 with SIGKILL a third of the way in, and bring it back on the same data directory.
  await waitFor(() => acceptedSoFar() >= TOTAL / 3, 'a third of the messages', 60_000);
  const victim = servers[0];
  victim.child.kill('SIGKILL');
  assert.equal(await victim.exited, 'SIGKILL');
  await sleep(300);
  const restartedAt = Date.now();
  await serve(0);
  await Promise.all(streams.map((s) => s.done));
  const sentMs = Date.now() - started;

  const accepted = new Set(streams.flatMap((s) => [...s.accepted.keys()]));
  const attempted = streams.reduce((a, s) => a + s.attempted, 0);
  assert.equal(attempted, TOTAL, 'smtp-source sent every message (retrying batches the kill cut off)');
  const refused = streams.flatMap((s) => s.refused.map((r) => `node ${s.node}: ${r}`));
  assert.deepEqual(
    streams.filter((s) => s.node !== 0).flatMap((s) => [...s.unanswered, ...s.refused]),
    [],
    'the nodes that kept running answered every message 250',
  );
  for (const s of streams.filter((x) => x.node === 0)) {
    assert.ok(s.unanswered.length <= 1, `only the message in flight at the kill lacks a 250: ${s.unanswered.join(', ')}\n${refused.join('\n')}`);
  }
  const afterRestart = streams.filter((s) => s.node === 0).flatMap((s) => [...s.accepted.values()]).filter((at) => at > restartedAt);
  assert.ok(afterRestart.length > 0, 'the restarted node accepted mail again');

  // Every 250: kept exactly once, its bytes in the database.
  const db = new pg.Client({ connectionString: process.env.POSTROOM_TEST_DATABASE_URL });
  await db.connect();
  t.after(() => db.end());
  await db.query(`SET search_path = ${new URL(pgs.url).searchParams.get('schema')}`);
  const rows = (await db.query<{ rcpt_to: string }>('SELECT rcpt_to FROM messages')).rows;
  const kept = new Map<string, number>();
  for (const r of rows) for (const rcpt of JSON.parse(r.rcpt_to) as string[]) kept.set(rcpt.toLowerCase(), (kept.get(rcpt.toLowerCase()) ?? 0) + 1);
  for (const rcpt of accepted) assert.equal(kept.get(rcpt), 1, `${rcpt} got a 250 and is kept ${kept.get(rcpt) ?? 0} times`);
  const missingBlobs = await db.query(
    'SELECT count(*)::int AS n FROM messages m LEFT JOIN blobs b ON b.sha256 = m.raw_sha256 WHERE b.sha256 IS NULL OR b.size <> m.size',
  );
  assert.equal(missingBlobs.rows[0].n, 0, 'every kept message has its bytes in the database');

  // Every kept message is delivered at least once, always under the same webhook-id.
  await waitFor(() => [...kept.keys()].every((rcpt) => hooks.requests.some((r) => r.rcpt === rcpt)), 'a webhook call for every kept message', 90_000);
  const idsByRcpt = new Map<string, Set<string>>();
  const rcptsById = new Map<string, Set<string>>();
  for (const r of hooks.requests) {
    (idsByRcpt.get(r.rcpt) ?? idsByRcpt.set(r.rcpt, new Set()).get(r.rcpt)!).add(r.webhookId);
    (rcptsById.get(r.webhookId) ?? rcptsById.set(r.webhookId, new Set()).get(r.webhookId)!).add(r.rcpt);
  }
  for (const [rcpt, ids] of idsByRcpt) assert.equal(ids.size, 1, `${rcpt} was delivered under ${ids.size} webhook-ids`);
  for (const [id, rcpts] of rcptsById) assert.equal(rcpts.size, 1, `webhook-id ${id} names ${rcpts.size} messages`);
  assert.equal(hooks.processed.size, kept.size, 'the receiver processed each message once');
  const deliveredMs = Date.now() - started;
  const deliveries = await db.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM deliveries GROUP BY status');
  await waitFor(async () => {
    const r = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM deliveries WHERE status <> 'done'");
    return r.rows[0].n === 0;
  }, 'every delivery to be done', 30_000);

  t.diagnostic(
    `${accepted.size} of ${attempted} got a 250 (${afterRestart.length} by the restarted node); ${rows.length} kept; ` +
      `${hooks.requests.length} webhook calls for ${hooks.processed.size} deliveries ` +
      `(${hooks.requests.length - hooks.processed.size} repeats); deliveries ${JSON.stringify(deliveries.rows)}; ` +
      `sent in ${sentMs} ms, all delivered after ${deliveredMs} ms`,
  );
});
