import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

// The built binary (scripts/run-tests.mjs builds dist/ first).
const BIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../bin/postroom.js');

interface Delivery {
  id: string;
  status: string;
  nextAttemptAt: string;
  lastError: string | null;
}
interface Replay {
  dryRun: boolean;
  matched: number;
  selected: number;
  replayed: number;
  perSecond: number;
  firstDueAt: string | null;
  lastDueAt: string | null;
}

/**
 * Bulk replay by filter, done by the server: counted by a dry run, capped, paced by staggered
 * due times, refused below operator, written to the audit log; the same from `postroom replay`.
 */
describe('replay of the deliveries matching a filter (API and CLI)', () => {
  let pr: TestPostroom;
  let hook: http.Server;
  let healthy = false;

  before(async () => {
    hook = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(healthy ? 204 : 503).end(healthy ? '' : 'target down'));
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    pr = await startTestPostroom({
      delivery: { pollInterval: '50ms' },
      routes: [
        {
          name: 'hooks',
          match: { recipient: 'hook@postroom.test' },
          deliver: [{ webhook: { url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/in`, allowPrivate: true } }],
          retry: { schedule: ['50ms'], maxAttempts: 1, jitter: 0 },
        },
        { name: 'bin', match: { recipient: 'bin@postroom.test' }, deliver: [{ discard: {} }] },
      ],
    });
    for (let i = 0; i < 4; i++) await inbound('hook@postroom.test', `dead ${i}`);
    await inbound('bin@postroom.test', 'discarded');
    await waitFor(async () => (await list('route=hooks&status=dead')).length === 4, 'four dead webhook deliveries');
  });
  after(async () => {
    await pr?.close();
    hook?.closeAllConnections();
    await new Promise((r) => hook?.close(r));
  });

  async function inbound(rcpt: string, subject: string): Promise<void> {
    const raw = `From: alice@example.org\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.org>\r\n\r\nx\r\n`;
    const res = await pr.api(`/api/v1/inbound?recipient=${rcpt}&sender=alice@example.org`, { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: raw });
    assert.equal(res.status, 202, await res.text());
  }

  async function list(query: string): Promise<Delivery[]> {
    const res = await pr.api(`/api/v1/deliveries?${query}&limit=500`);
    assert.equal(res.status, 200, await res.clone().text());
    return ((await res.json()) as { items: Delivery[] }).items;
  }

  const replay = (body: unknown, token?: string) =>
    fetch(`${pr.baseUrl}/api/v1/deliveries/replay`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token ?? pr.apiToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('the list filters by target kind and by words of the last error, case-insensitively', async () => {
    assert.equal((await list('target=webhook&error=HTTP%20503')).length, 4);
    assert.equal((await list('target=discard')).length, 1);
    assert.equal((await list('error=no%20such%20words')).length, 0);
  });

  it('a dry run counts the matching dead letters and changes nothing', async () => {
    const res = await replay({ route: 'hooks', dryRun: true, perSecond: 2 });
    assert.equal(res.status, 200, await res.clone().text());
    const r = (await res.json()) as Replay;
    assert.deepEqual({ ...r, firstDueAt: null, lastDueAt: null }, { dryRun: true, matched: 4, selected: 4, replayed: 0, perSecond: 2, firstDueAt: null, lastDueAt: null });
    // Four at two a second: the last would be due 1 s after the first.
    assert.equal(Date.parse(r.lastDueAt!) - Date.parse(r.firstDueAt!), 1000);
    assert.equal((await list('route=hooks&status=dead')).length, 4);
    const none = (await (await replay({ route: 'hooks', error: 'words it never said', dryRun: true })).json()) as Replay;
    assert.equal(none.matched, 0);
  });

  it('refuses a viewer, a read-scoped token, a pending status and a window that ends before it starts', async () => {
    for (const [name, role] of [['vic', 'viewer'], ['ola', 'operator']]) {
      const u = await pr.api('/api/v1/users', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, role, password: 'correct horse battery' }) });
      assert.equal(u.status, 201, await u.text());
    }
    const token = async (user: string, scope: string) => {
      const res = await pr.api('/api/v1/tokens', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, name: `${user} ${scope}`, scope }) });
      assert.equal(res.status, 201, await res.clone().text());
      return ((await res.json()) as { token: string }).token;
    };
    assert.equal((await replay({ route: 'hooks', dryRun: true }, await token('vic', 'write'))).status, 403);
    assert.equal((await replay({ route: 'hooks', dryRun: true }, await token('ola', 'read'))).status, 403);
    assert.equal((await replay({ route: 'hooks', dryRun: true }, await token('ola', 'write'))).status, 200);
    const pending = await replay({ status: 'pending' });
    assert.equal(pending.status, 400);
    assert.match(((await pending.json()) as { detail: string }).detail, /status/);
    assert.equal((await replay({ since: '2030-01-02T00:00:00Z', until: '2030-01-01T00:00:00Z' })).status, 400);
    assert.equal((await list('route=hooks&status=dead')).length, 4);
  });

  it('replays at most cap deliveries, due one a second apart, and they are delivered; the rest stay dead', async () => {
    healthy = true;
    const res = await replay({ route: 'hooks', status: 'dead', cap: 3, perSecond: 1 });
    assert.equal(res.status, 200, await res.clone().text());
    const r = (await res.json()) as Replay;
    assert.equal(r.matched, 4);
    assert.equal(r.replayed, 3);
    assert.equal(Date.parse(r.lastDueAt!) - Date.parse(r.firstDueAt!), 2000, 'three at one a second: spread over two seconds');
    assert.equal((await list('route=hooks&status=dead')).length, 1);
    await waitFor(async () => (await list('route=hooks&status=done')).length === 3, 'the three replayed deliveries to be done');
    assert.equal((await list('route=hooks&status=dead')).length, 1);
  });

  it('writes the filter and the counts to the audit log', async () => {
    const page = (await (await pr.api('/api/v1/audit?action=delivery.replay')).json()) as { items: { actor: string; detail: Record<string, unknown> }[] };
    const done = page.items.find((e) => e.detail.dryRun === false);
    assert.ok(done, JSON.stringify(page.items));
    assert.deepEqual(
      { filter: done.detail.filter, cap: done.detail.cap, perSecond: done.detail.perSecond, matched: done.detail.matched, replayed: done.detail.replayed },
      { filter: { route: 'hooks', status: 'dead' }, cap: 3, perSecond: 1, matched: 4, replayed: 3 },
    );
    assert.ok(page.items.some((e) => e.detail.dryRun === true && e.actor === 'ola'), 'the operator dry run is recorded with its actor');
  });

  /** Run the built `postroom replay …` against this Postroom's store; exit code, stdout and stderr. */
  async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    const file = path.join(pr.dir, 'cli.json');
    writeFileSync(file, JSON.stringify({ dataDir: pr.config.dataDir, store: { database: pr.config.store.database } }));
    const child = spawn(process.execPath, [BIN, 'replay', ...args, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number>((r) => child.on('close', (c) => r(c ?? -1)));
    return { code, out, err };
  }

  it('postroom replay: --help, a dry run, a wrong option (64), then the replay, audited as the CLI user', async () => {
    const help = await cli('--help');
    assert.equal(help.code, 0);
    assert.match(help.out, /^usage: postroom replay /);
    assert.match(help.out, /--dry-run/);
    const dry = await cli('--route', 'hooks', '--status', 'dead', '--dry-run');
    assert.equal(dry.code, 0, dry.err);
    assert.match(dry.out, /^1 match; 1 would be replayed, 10 a second, the last due \S+ \(dry run: nothing changed\)$/m);
    const wrong = await cli('--status', 'pending');
    assert.equal(wrong.code, 64);
    assert.match(wrong.err, /--status must be dead, failed, done/);
    assert.equal((await cli('--cap', '0')).code, 64);
    const run = await cli('--route', 'hooks', '--error', 'http 503', '--json');
    assert.equal(run.code, 0, run.err);
    assert.deepEqual(
      (({ matched, replayed, dryRun }) => ({ matched, replayed, dryRun }))(JSON.parse(run.out) as Replay),
      { matched: 1, replayed: 1, dryRun: false },
    );
    // The running server picks it up as it falls due.
    await waitFor(async () => (await list('route=hooks&status=done')).length === 4, 'the CLI-replayed delivery to be done');
    const page = (await (await pr.api('/api/v1/audit?action=delivery.replay')).json()) as { items: { actor: string; detail: Record<string, unknown> }[] };
    assert.match(page.items[0]!.actor, /^cli:/);
    assert.equal(page.items[0]!.detail.replayed, 1);
  });
});
