import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

// The built binary (scripts/run-tests.mjs builds dist/ first).
const BIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../bin/postroom.js');

/**
 * The whole path in one process: SMTP in, parse, route, queue, webhook out; then the
 * deliveries API shows the dead letter, its attempts, and replays it.
 */
describe('delivery end to end and the deliveries API', () => {
  let pr: TestPostroom;
  let hook: http.Server;
  let healthy = false;
  /** /gone answers 410 Gone while this is true. */
  let gone = true;
  const hits: { headers: http.IncomingHttpHeaders; body: string }[] = [];

  before(async () => {
    hook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (req.url === '/gone') return res.writeHead(gone ? 410 : 204).end(gone ? 'endpoint deleted' : '');
        hits.push({ headers: req.headers, body });
        res.writeHead(healthy ? 204 : 503).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/in`;
    pr = await startTestPostroom({
      delivery: { pollInterval: '50ms' },
      routes: [
        {
          name: 'hooks',
          match: { recipient: 'hook@postroom.test' },
          deliver: [{ webhook: { url, allowPrivate: true, secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', token: 's3cret-token' } }],
          retry: { schedule: ['50ms'], maxAttempts: 2, jitter: 0 },
        },
        {
          name: 'gone',
          match: { recipient: 'gone@postroom.test' },
          deliver: [{ webhook: { url: url.replace(/\/in$/, '/gone'), allowPrivate: true } }],
        },
      ],
    });
  });
  after(async () => {
    await pr?.close();
    hook.closeAllConnections();
    await new Promise((r) => hook.close(r));
  });

  async function send(to: string, subject: string) {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: pr.smtpPort, secure: false, ignoreTLS: true });
    try {
      return await t.sendMail({ from: 'alice@example.org', to, subject, text: 'hello' });
    } finally {
      t.close();
    }
  }

  it('refuses a recipient no route takes at RCPT time', async () => {
    await assert.rejects(send('nobody@postroom.test', 'x'), (err: { responseCode?: number; response?: string }) => {
      assert.equal(err.responseCode, 550);
      assert.match(err.response ?? '', /5\.1\.1/);
      return true;
    });
  });

  it('a dead delivery is listed, shows its attempts, and a replay delivers it', async () => {
    await send('hook@postroom.test', 'to the hook');
    const dead = await waitFor(async () => {
      const res = await pr.api('/api/v1/deliveries?status=dead&route=hooks');
      const body = (await res.json()) as { items: { id: string; messageId: string; params: Record<string, unknown> }[] };
      return body.items[0];
    }, 'a dead delivery');
    assert.equal(dead.params.secret, '***', 'secrets are not shown');
    assert.equal(dead.params.token, '***');
    assert.match(String(dead.params.url), /^http:\/\/127\.0\.0\.1:\d+\/in$/);

    const detail = (await (await pr.api(`/api/v1/deliveries/${dead.id}`)).json()) as {
      status: string;
      lastError: string;
      history: { n: number; outcome: string; error: string; nextAttemptAt: string | null }[];
    };
    assert.equal(detail.status, 'dead');
    assert.deepEqual(detail.history.map((a) => [a.n, a.outcome]), [[1, 'transient'], [2, 'dead']]);
    assert.match(detail.lastError, /gave up after 2 attempts; last error: 4\.4\.1 HTTP 503/);
    assert.equal(hits.length, 2);
    const msg = (await (await pr.api(`/api/v1/messages/${dead.messageId}`)).json()) as { status: string };
    assert.equal(msg.status, 'failed');

    healthy = true;
    const replay = await pr.api(`/api/v1/deliveries/${dead.id}/retry`, { method: 'POST' });
    assert.equal(replay.status, 200);
    assert.equal(((await replay.json()) as { status: string }).status, 'pending');
    await waitFor(async () => {
      const d = (await (await pr.api(`/api/v1/deliveries/${dead.id}`)).json()) as { status: string };
      return d.status === 'done';
    }, 'replayed delivery done');
    assert.equal(hits.length, 3);
    assert.equal(new Set(hits.map((h) => h.headers['webhook-id'])).size, 1, 'the replay carries the same webhook-id');
    const after = (await (await pr.api(`/api/v1/messages/${dead.messageId}`)).json()) as { status: string; error: string | null };
    assert.equal(after.status, 'delivered');
    assert.equal(after.error, null);
  });

  /** Run the built `postroom deliveries …` against this Postroom's store; exit code and stdout. */
  async function cli(...args: string[]): Promise<{ code: number; out: string }> {
    const file = path.join(pr.dir, 'cli.json');
    writeFileSync(file, JSON.stringify({ dataDir: pr.config.dataDir, store: { database: pr.config.store.database } }));
    const child = spawn(process.execPath, [BIN, 'deliveries', ...args, '--config', file], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number>((r) => child.on('close', (c) => r(c ?? -1)));
    return { code, out };
  }

  it('postroom deliveries list|show|retry read and replay the same queue', async () => {
    const list = await cli('list', '--route', 'hooks', '--json');
    assert.equal(list.code, 0);
    const [d] = JSON.parse(list.out) as { id: string; status: string; params: { secret: string } }[];
    assert.equal(d.status, 'done');
    assert.equal(d.params.secret, '***');
    const table = await cli('list', '--status', 'done');
    assert.match(table.out, new RegExp(`^${d.id}\tdone`, 'm'));
    const show = await cli('show', d.id);
    assert.match(show.out, /^  #1\t\S+\ttransient\t4\.4\.1 HTTP 503/m);
    assert.match(show.out, /^  #1\t\S+\tdone\t/m, 'the replay attempt is listed too');
    const before = hits.length;
    const retry = await cli('retry', d.id);
    assert.equal(retry.code, 0);
    await waitFor(() => hits.length > before, 'the replay reaches the hook');
    assert.equal((await cli('show', 'dlv_nope')).code, 67);
    assert.equal((await cli('list', '--status', 'lost')).code, 64);
  });

  it('410 Gone pauses the route target: listed by the API and the CLI, resumed through either', async () => {
    type Paused = { route: string; targetIndex: number; kind: string; reason: string; pending: number };
    const paused = async () => ((await (await pr.api('/api/v1/paused-targets')).json()) as { items: Paused[] }).items;
    const deliveries = async (status: string) =>
      ((await (await pr.api(`/api/v1/deliveries?route=gone&status=${status}`)).json()) as { items: { id: string; attempts: number; lastError: string }[] }).items;
    healthy = true;
    await send('gone@postroom.test', 'first');
    const [failed] = await waitFor(() => deliveries('failed').then((x) => (x.length ? x : undefined)), 'the 410 to fail the delivery');
    assert.match(failed.lastError, /^5\.1\.6 HTTP 410: endpoint deleted/);
    assert.deepEqual((await paused()).map((p) => [p.route, p.targetIndex, p.kind]), [['gone', 0, 'webhook']]);

    // Held: the next message's delivery waits unattempted while another route delivers.
    await send('gone@postroom.test', 'second');
    const before = hits.length;
    await send('hook@postroom.test', 'beside');
    await waitFor(() => hits.length > before, 'the other route to deliver');
    const [held] = await deliveries('pending');
    assert.equal(held.attempts, 0);
    assert.equal((await paused())[0].pending, 1);
    const listed = await cli('paused', '--json');
    assert.equal(listed.code, 0);
    assert.deepEqual((JSON.parse(listed.out) as Paused[]).map((p) => [p.route, p.targetIndex, p.pending]), [['gone', 0, 1]]);
    assert.match((await cli('paused')).out, /^gone\t0\twebhook\twebhook http:\/\/127\.0\.0\.1:\d+\t1 pending\t\S+\t5\.1\.6 HTTP 410/m);

    // The API resumes it: the held delivery goes (still 410: paused again).
    const resumed = await pr.api('/api/v1/paused-targets/gone/0/resume', { method: 'POST' });
    assert.equal(resumed.status, 200);
    assert.deepEqual(await resumed.json(), { route: 'gone', targetIndex: 0, resumed: true });
    await waitFor(() => deliveries('failed').then((x) => x.length === 2), 'the held delivery to be attempted after resume');
    assert.equal((await paused()).length, 1, 'paused again by its own 410');

    // The endpoint is back; the CLI resumes it and the next message is delivered.
    gone = false;
    assert.equal((await cli('resume', 'gone', '0')).code, 0);
    assert.deepEqual(await paused(), []);
    await send('gone@postroom.test', 'third');
    await waitFor(() => deliveries('done').then((x) => x.length === 1), 'delivery after the CLI resume');
    assert.equal((await cli('resume', 'gone', '0')).code, 67, 'not paused');
    assert.equal((await cli('resume', 'gone', 'x')).code, 64);
    assert.equal((await pr.api('/api/v1/paused-targets/gone/0/resume', { method: 'POST' })).status, 404);
  });

  it('answers 404 for an unknown delivery and 400 for a bad filter', async () => {
    assert.equal((await pr.api(`/api/v1/deliveries/dlv_${'0'.repeat(32)}`)).status, 404);
    assert.equal((await pr.api(`/api/v1/deliveries/dlv_${'0'.repeat(32)}/retry`, { method: 'POST' })).status, 404);
    // Malformed: cannot be one of ours, the client's mistake.
    assert.equal((await pr.api('/api/v1/deliveries/dlv_0000')).status, 400);
    assert.equal((await pr.api('/api/v1/deliveries/dlv_0000/retry', { method: 'POST' })).status, 400);
    assert.equal((await pr.api('/api/v1/deliveries?status=lost')).status, 400);
    assert.equal((await fetch(`${pr.baseUrl}/api/v1/deliveries`)).status, 401);
  });
});
