import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, tempDir, waitFor } from '../helpers/env.js';

// The real binary, as `npx postroom` runs it (scripts/run-tests.mjs builds dist/ first).
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/postroom.js');

/** The environment without any POSTROOM_* a developer may have exported. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('POSTROOM_')));
  return { ...env, ...extra };
}

function postroom(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  return spawnSync(process.execPath, [bin, ...args], {
    cwd: opts.cwd ?? root,
    env: cleanEnv(opts.env),
    encoding: 'utf8',
    timeout: 30_000,
  });
}

/** Read the 220 greeting of an SMTP listener. */
function smtpGreeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setEncoding('utf8');
    sock.once('data', (d: string) => {
      sock.end('QUIT\r\n');
      resolve(d);
    });
    sock.once('error', reject);
  });
}

describe('postroom CLI', () => {
  it('--help lists the commands, points at the config reference and exits 0', () => {
    const r = postroom(['--help']);
    assert.equal(r.status, 0, r.stderr);
    for (const cmd of ['serve', 'check-config', 'migrate', 'hash-password']) assert.match(r.stdout, new RegExp(`\\b${cmd}\\b`));
    assert.match(r.stdout, /docs\/config\.md/);
  });

  it('an unknown command exits 64 (EX_USAGE) with the help on stderr', () => {
    const r = postroom(['frobnicate']);
    assert.equal(r.status, 64);
    assert.match(r.stderr, /unknown command 'frobnicate'/);
  });

  it('an unknown option, a missing option value or a stray argument exits 64 (EX_USAGE) for every command, touching nothing', async () => {
    const { commands } = await import('../../src/cli/commands/index.js');
    const cwd = tempDir('cli-usage-');
    try {
      // deliver is run by an MTA: a usage mistake there is its 4.3.5 (EX_TEMPFAIL), so the MTA keeps the mail.
      const names = [...commands.keys()].filter((n) => n !== 'deliver');
      assert.ok(names.length >= 8, names.join(' '));
      const cases = [
        ...names.map((n) => [n, '--bogus']),
        ['deliveries', 'list', '--bogus'],
        ['serve', '--config'],
        ['migrate', 'stray'],
      ];
      for (const args of cases) {
        const r = postroom(args, { cwd: cwd.dir });
        assert.equal(r.status, 64, `postroom ${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`^postroom ${args[0]}: .*(--bogus|--config|stray)`), args.join(' '));
      }
      const r = postroom(['deliver', '--bogus'], { cwd: cwd.dir });
      assert.equal(r.status, 75, r.stderr);
      assert.deepEqual(readdirSync(cwd.dir), [], 'no data directory or file was created');
    } finally {
      cwd.cleanup();
    }
  });

  it('reindex rebuilds the search index of an empty store and, not on a terminal, prints plain lines', (t) => {
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const help = postroom(['reindex', '--help']);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /usage: postroom reindex/);
    const r = postroom(['reindex'], { env: { POSTROOM_DATA_DIR: path.join(tmp.dir, 'data') } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^reindex: 0 \/ 0 messages, .*done in/m);
    assert.doesNotMatch(r.stderr, /\r|\x1b\[/, 'no terminal control characters in a log');
  });

  it('check-config accepts the shipped example and exits 0', () => {
    const r = postroom(['check-config', 'config/postroom.example.yaml']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /postroom\.example\.yaml: ok/);
  });

  it('check-config names the key path of each problem and exits 78 (EX_CONFIG)', (t) => {
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const file = path.join(tmp.dir, 'bad.yaml');
    writeFileSync(
      file,
      ['smtp:', '  maxMessageSize: 12 parsecs', '  greetingDelay:', '    allowlistd: 0ms', 'http:', '  listen: nowhere', ''].join('\n'),
    );
    const r = postroom(['check-config', file]);
    assert.equal(r.status, 78, r.stderr);
    assert.match(r.stderr, /smtp\.maxMessageSize: not a size: '12 parsecs'/);
    assert.match(r.stderr, /smtp\.greetingDelay\.allowlistd: unknown key/);
    assert.match(r.stderr, /http\.listen: not host:port/);
    assert.equal(r.stdout, '');
  });

  it('check-config without a file exits 64 with the usage', () => {
    const r = postroom(['check-config']);
    assert.equal(r.status, 64);
    assert.match(r.stderr, /usage: postroom check-config FILE/);
  });

  it('serve listens where the environment says, prints the token, keeps it 0600 and stops on SIGTERM', async (t) => {
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const dataDir = path.join(tmp.dir, 'data');
    const [smtpPort, httpPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, [bin, 'serve'], {
      cwd: tmp.dir,
      env: cleanEnv({
        POSTROOM_DATA_DIR: dataDir,
        POSTROOM_SMTP_LISTEN: `127.0.0.1:${smtpPort}`,
        POSTROOM_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => child.kill('SIGKILL'));
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.resume();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );

    const token = (await waitFor(() => /API token: (\S+)/.exec(stderr)?.[1], `the token in: ${stderr}`, 20_000)) as string;
    assert.match(stderr, new RegExp(`SMTP\\s+127\\.0\\.0\\.1:${smtpPort}`));
    assert.match(stderr, new RegExp(`HTTP\\s+http://127\\.0\\.0\\.1:${httpPort}/`));
    assert.ok(stderr.includes(dataDir), 'names the data directory');

    const tokenFile = path.join(dataDir, 'api-token');
    assert.equal(readFileSync(tokenFile, 'utf8').trim(), token);
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600, 'the token file is readable by its owner only');

    assert.match(await smtpGreeting(smtpPort), /^220 /);
    const list = await fetch(`http://127.0.0.1:${httpPort}/api/v1/messages`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(list.status, 200);
    const denied = await fetch(`http://127.0.0.1:${httpPort}/api/v1/messages`);
    assert.equal(denied.status, 401);

    child.kill('SIGTERM');
    const end = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 10_000))]);
    assert.deepEqual(end, { code: 0, signal: null }, `stopped cleanly; stderr: ${stderr}`);
  });

  it('serve keeps the generated token across restarts', async (t) => {
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const env = {
      POSTROOM_DATA_DIR: path.join(tmp.dir, 'data'),
      POSTROOM_SMTP_LISTEN: `127.0.0.1:${await freePort()}`,
      POSTROOM_HTTP_LISTEN: `127.0.0.1:${await freePort()}`,
    };
    const tokens: string[] = [];
    for (let run = 0; run < 2; run++) {
      const child = spawn(process.execPath, [bin, 'serve'], { cwd: tmp.dir, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
      t.after(() => child.kill('SIGKILL'));
      let stderr = '';
      let log = ''; // pino's lines: what a failed stop says
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.stdout.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-4000)));
      const exited = new Promise((resolve) => child.once('exit', resolve));
      tokens.push((await waitFor(() => /API token: (\S+)/.exec(stderr)?.[1], 'the token', 20_000)) as string);
      child.kill('SIGTERM');
      assert.equal(await exited, 0, `run ${run} stopped cleanly; stderr: ${stderr}\nlog: ${log}`);
    }
    assert.equal(tokens[0], tokens[1]);
  });
});
