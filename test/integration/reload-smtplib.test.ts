import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { DEBIAN_PYTHON, requirePeer, waitFor } from '../helpers/env.js';
import { startFromFile, type FilePostroom } from '../helpers/config-file.js';

// Python's smtplib as the client: a session opened before the reload, held between RCPT and
// DATA, then finished after it; and a session that starts after it.
const HELD_SESSION = `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=60)
s.ehlo('client.test')
s.mail('alice@example.org')
print('rcpt', s.rcpt(sys.argv[2])[0], flush=True)
sys.stdin.readline()
code, text = s.data(b'Subject: held\\r\\n\\r\\nbegun before the reload\\r\\n')
print('data', code, text.decode(), flush=True)
s.quit()
`;

const ONE_SESSION = `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=60)
s.ehlo('client.test')
s.mail('alice@example.org')
for r in sys.argv[2:]:
    print('rcpt', r, s.rcpt(r)[0], flush=True)
code, text = s.data(b'Subject: new\\r\\n\\r\\nafter the reload\\r\\n')
print('data', code, text.decode(), flush=True)
s.quit()
`;

const OLD = {
  routes: [{ name: 'old-route', match: { recipient: ['a@postroom.test', 'old@postroom.test'] }, deliver: [{ discard: null }] }],
};
const NEW = {
  routes: [{ name: 'new-route', match: { recipient: 'a@postroom.test' }, deliver: [{ discard: null }] }],
};

/** Run a Python client to its end (asynchronously: the server answering it runs in this process). */
function runPython(script: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(DEBIAN_PYTHON, ['-c', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr })));
}

const keptId = (out: string) => /kept as (\w+)/.exec(out)?.[1];

async function routesOf(f: FilePostroom, id: string): Promise<string[]> {
  const rows = await waitFor(async () => {
    const r = await f.pr.db.kysely.selectFrom('deliveries').select('route').where('message', '=', id).execute();
    return r.length ? r : undefined;
  }, `deliveries of ${id}`);
  return rows.map((r) => r.route).sort();
}

describe('smtplib: a session begun before a reload finishes on the old routes, a new one uses the new', () => {
  let f: FilePostroom;
  before(async () => {
    f = await startFromFile(OLD);
  });
  after(async () => {
    await f?.close();
  });

  it('held session: RCPT and planning by the routes it began with; new session: the reloaded ones', async (t) => {
    if (!requirePeer(t, 'python3')) return;
    const held = spawn(DEBIAN_PYTHON, ['-c', HELD_SESSION, String(f.smtpPort), 'old@postroom.test'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    held.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    held.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((resolve) => held.once('exit', resolve));
    await waitFor(() => out.includes('rcpt'), 'the held session to pass RCPT', 30_000);
    assert.match(out, /rcpt 250/);

    f.write(NEW);
    const r = await f.pr.reload();
    assert.equal(r.result, 'applied', JSON.stringify(r));
    assert.deepEqual(r.applied, ['routes']);
    assert.deepEqual(f.pr.router.routes.map((c) => c.name), ['new-route']);

    held.stdin.end('go\n');
    assert.equal(await exited, 0, err);
    assert.match(out, /data 250/);
    const heldId = keptId(out);
    assert.ok(heldId, out);
    assert.deepEqual(await routesOf(f, heldId), ['old-route']);

    const fresh = await runPython(ONE_SESSION, [String(f.smtpPort), 'old@postroom.test', 'a@postroom.test']);
    assert.equal(fresh.status, 0, fresh.stderr);
    // old@ is no longer routed: refused at RCPT by the new routes; a@ takes the new route.
    assert.match(fresh.stdout, /rcpt old@postroom.test 550/);
    assert.match(fresh.stdout, /rcpt a@postroom.test 250/);
    const freshId = keptId(fresh.stdout);
    assert.ok(freshId, fresh.stdout);
    assert.deepEqual(await routesOf(f, freshId), ['new-route']);
  });

  it('an invalid file is refused whole: the old routes stay, the log names the key path', async () => {
    const before = f.pr.router.routes.map((c) => c.name);
    f.write({ routes: [{ name: 'broken', match: { recipient: 'b@postroom.test' }, deliver: [{ spool: { format: ['id'] } }] }], smtp: { maxRecipients: 5 } });
    const r = await f.pr.reload();
    assert.equal(r.result, 'invalid');
    assert.ok(r.problems.some((p) => p.startsWith('routes[0].deliver[0].spool.dir')), r.problems.join('\n'));
    assert.deepEqual(f.pr.router.routes.map((c) => c.name), before);
    // Nothing of the file applied: not even its valid limit.
    assert.notEqual(f.pr.config.smtp.maxRecipients, 5);
    const line = f.logs().find((l) => l.msg === 'config reload refused: the running config is kept');
    assert.ok(line, 'a log line for the refused reload');
    assert.ok((line.problems as string[]).some((p) => p.startsWith('routes[0].deliver[0].spool.dir')));
    const metrics = await (await f.api('/metrics')).text();
    assert.match(metrics, /postroom_config_reloads_total\{result="invalid"\} 1/);
  });

  it('settings fixed at start are reported as needing a restart and not applied; the others are', async () => {
    const generation = f.pr.router.current().generation;
    f.write({ ...NEW, smtp: { maxRecipients: 7, listen: '127.0.0.1:1' }, store: { poolSize: 3 } });
    const r = await f.pr.reload();
    assert.equal(r.result, 'applied');
    assert.deepEqual(r.applied, ['smtp.maxRecipients']);
    assert.deepEqual(r.needsRestart.sort(), ['smtp.listen', 'store.poolSize']);
    assert.equal(f.pr.config.smtp.maxRecipients, 7);
    assert.equal(f.pr.config.smtp.listen.port, 0);
    assert.equal(f.pr.config.store.poolSize, 10);
    assert.ok(f.pr.router.current().generation > generation);
    const metrics = await (await f.api('/metrics')).text();
    assert.match(metrics, new RegExp(`postroom_config_info\\{hash="${r.hash}"\\} 1`));
    assert.match(metrics, new RegExp(`postroom_config_generation ${r.generation}`));
  });
});
