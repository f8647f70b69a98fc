import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { BIN } from '../helpers/deliver.js';
import { hasCommand, smtpGreets, tempDir, waitFor } from '../helpers/env.js';
import { cleanEnv, startServeChild } from '../helpers/serve-child.js';

function postroom(args: string[], cwd: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env: cleanEnv(env), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** KEY=value lines of an env file. */
const readEnv = (file: string) =>
  Object.fromEntries(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );

describe('postroom init', () => {
  test('writes a config that check-config passes and serve starts with, ready on /readyz, with the TLS files it was given', async (t) => {
    const tmp = tempDir();
    t.after(() => tmp.cleanup());
    const tls: string[] = [];
    if (hasCommand('openssl')) {
      const key = path.join(tmp.dir, 'key.pem');
      const cert = path.join(tmp.dir, 'cert.pem');
      const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=mx.example.test'], { stdio: 'ignore' });
      assert.equal(r.status, 0, 'openssl made a test certificate');
      tls.push('--tls-cert', cert, '--tls-key', key);
    }
    const out = path.join(tmp.dir, 'etc/postroom.yaml');
    const init = postroom(
      ['init', '--domain', 'example.test', '--domain', 'lists.example.test', '--hostname', 'mx.example.test', '--allow', '127.0.0.1', '--allow', '10.0.0.0/8', ...tls,
        '--out', out, '--data-dir', path.join(tmp.dir, 'data'), '--smtp-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0'],
      tmp.dir,
    );
    assert.equal(init.code, 0, init.stderr);
    const envFile = path.join(tmp.dir, 'etc/postroom.env');
    assert.equal(statSync(envFile).mode & 0o777, 0o600);
    const env = readEnv(envFile);
    assert.match(env.POSTROOM_API_TOKEN!, /^[A-Za-z0-9_-]{43}$/);
    assert.match(env.POSTROOM_SECRET_KEY!, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(env.POSTROOM_API_TOKEN, env.POSTROOM_SECRET_KEY);

    const text = readFileSync(out, 'utf8');
    assert.doesNotMatch(text, new RegExp(env.POSTROOM_API_TOKEN!), 'no secret in the config file');
    const cfg = parse(text);
    assert.deepEqual(cfg.smtp.domains, ['example.test', 'lists.example.test']);
    assert.deepEqual(cfg.smtp.clients, ['127.0.0.1', '10.0.0.0/8']);
    assert.equal(cfg.smtp.hostname, 'mx.example.test');
    assert.equal(cfg.http.listen, '127.0.0.1:0');

    const check = postroom(['check-config', out], tmp.dir, env);
    assert.equal(check.code, 0, check.stderr);

    const child = await startServeChild(['--config', out], env, tmp.dir);
    t.after(() => child.child.kill('SIGKILL'));
    assert.equal(child.token, env.POSTROOM_API_TOKEN, 'the token of the env file is the one in use');
    const port = Number(/HTTP +http:\/\/127\.0\.0\.1:(\d+)\//.exec(child.stderr())?.[1]);
    const smtpPort = Number(/SMTP +127\.0\.0\.1:(\d+)/.exec(child.stderr())?.[1]);
    const ready = await waitFor(async () => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      return res.status === 200 ? ((await res.json()) as { status: string }) : undefined;
    }, 'serve to answer /readyz', 20_000);
    assert.equal(ready.status, 'ready');
    assert.ok(await smtpGreets(smtpPort));
    child.child.kill('SIGTERM');
    assert.equal(await child.exited, 0);
  });

  test('never overwrites an existing config or env file without --force', (t) => {
    const tmp = tempDir();
    t.after(() => tmp.cleanup());
    const out = path.join(tmp.dir, 'postroom.yaml');
    writeFileSync(out, '# mine\n');
    const args = ['init', '--domain', 'example.test', '--out', out, '--data-dir', tmp.dir];
    const r = postroom(args, tmp.dir);
    assert.equal(r.code, 73);
    assert.match(r.stderr, /already exists; not overwritten/);
    assert.equal(readFileSync(out, 'utf8'), '# mine\n');
    assert.equal(postroom(['init', '--domain', 'example.test', '--out', path.join(tmp.dir, 'other.yaml'), '--data-dir', tmp.dir].concat(['--env-file', out]), tmp.dir).code, 73, 'the env file is guarded too');

    const envFile = path.join(tmp.dir, 'postroom.env');
    writeFileSync(envFile, 'POSTROOM_API_TOKEN=old\n', { mode: 0o644 });
    const forced = postroom([...args, '--force'], tmp.dir);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(readFileSync(out, 'utf8'), /domains:\n {4}- "example.test"/);
    assert.notEqual(readEnv(envFile).POSTROOM_API_TOKEN, 'old');
    assert.equal(statSync(envFile).mode & 0o777, 0o600, 'a replaced env file is made 0600 too');
  });

  test('refuses to write a config that would take mail for every domain, or half a TLS setting', (t) => {
    const tmp = tempDir();
    t.after(() => tmp.cleanup());
    const out = path.join(tmp.dir, 'postroom.yaml');
    for (const [args, why] of [
      [[], /--domain is needed/],
      [['--domain', 'exa mple.test'], /not a domain name/],
      [['--domain', 'example.test', '--tls-cert', 'c.pem'], /--tls-cert and --tls-key go together/],
      [['--domain', 'example.test', '--allow', '10.0.0.0/33'], /--allow/],
    ] as const) {
      const r = postroom(['init', ...args, '--out', out], tmp.dir);
      assert.equal(r.code, 64, args.join(' '));
      assert.match(r.stderr, why);
    }
    assert.throws(() => statSync(out), 'nothing written');
  });
});
