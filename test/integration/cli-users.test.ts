import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

// The real binary (scripts/run-tests.mjs builds dist/ first).
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/postroom.js');

describe('postroom users / tokens against the store a running server uses', () => {
  let pr: TestPostroom;
  let configFile: string;

  before(async () => {
    pr = await startTestPostroom({ http: { signIn: { scryptCost: 10 } } });
    configFile = path.join(pr.dir, 'cli.json');
    // JSON is YAML: the same data directory and database as the server, and its scrypt cost.
    writeFileSync(configFile, JSON.stringify({ dataDir: pr.dir, store: { database: pr.config.store.database }, http: { signIn: { scryptCost: 10 } } }));
  });
  after(() => pr?.close());

  const cli = (args: string[], input?: string) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('POSTROOM_')));
    // stdin a pipe, never a terminal: the password comes only from --password-stdin.
    return spawnSync(process.execPath, [bin, ...args, '--config', configFile], { env, input: input ?? '', encoding: 'utf8', timeout: 30_000 });
  };
  const login = (name: string, password: string) =>
    fetch(`${pr.baseUrl}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, password }) });

  it('users add --password-stdin makes a user who can sign in with that role', async () => {
    const r = cli(['users', 'add', 'alice', '--role', 'admin', '--password-stdin'], 'a long passphrase\n');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'added alice (admin)\n');
    const res = await login('alice', 'a long passphrase');
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { role: string }).role, 'admin');
    assert.equal((await login('alice', 'a long passphrase\n')).status, 401, 'the line ending is not part of it');
  });

  it('never takes the password from the command line, and without a terminal needs --password-stdin (exit 64)', () => {
    const stray = cli(['users', 'add', 'bob', '--role', 'viewer', 'hunter2hunter2']);
    assert.equal(stray.status, 64, stray.stderr);
    const noTty = cli(['users', 'add', 'bob', '--role', 'viewer']);
    assert.equal(noTty.status, 64);
    assert.match(noTty.stderr, /--password-stdin/);
    const badRole = cli(['users', 'add', 'bob', '--role', 'root', '--password-stdin'], 'whatever1234\n');
    assert.equal(badRole.status, 64);
    const short = cli(['users', 'add', 'bob', '--role', 'viewer', '--password-stdin'], 'short\n');
    assert.equal(short.status, 64);
    assert.match(short.stderr, /at least 8 characters/);
    assert.equal(cli(['users', 'list']).stdout.includes('bob'), false);
  });

  it('list, set-role, passwd, disable, delete; 67 for an unknown user', async () => {
    assert.equal(cli(['users', 'add', 'carol', '--role', 'viewer', '--password-stdin'], 'first password\n').status, 0);
    assert.equal(cli(['users', 'set-role', 'carol', 'operator']).status, 0);
    const list = JSON.parse(cli(['users', 'list', '--json']).stdout) as { name: string; role: string; disabled: boolean }[];
    assert.deepEqual(list.map((u) => [u.name, u.role, u.disabled]), [['alice', 'admin', false], ['carol', 'operator', false]]);
    assert.equal(cli(['users', 'passwd', 'carol', '--password-stdin'], 'second password\n').status, 0);
    assert.equal((await login('carol', 'first password')).status, 401);
    assert.equal((await login('carol', 'second password')).status, 200);
    assert.equal(cli(['users', 'disable', 'carol']).status, 0);
    assert.equal((await login('carol', 'second password')).status, 401);
    assert.equal(cli(['users', 'passwd', 'nobody', '--password-stdin'], 'x\n').status, 67);
    assert.equal(cli(['users', 'set-role', 'nobody', 'viewer']).status, 67);
    assert.equal(cli(['users', 'delete', 'carol']).status, 0);
    assert.equal(cli(['users', 'delete', 'carol']).status, 67);
  });

  it('tokens add prints the token once; it opens the API until tokens revoke', async () => {
    const r = cli(['tokens', 'add', 'alice', '--name', 'backup script', '--scope', 'read']);
    assert.equal(r.status, 0, r.stderr);
    const token = r.stdout.trim();
    assert.match(token, /^prt_/);
    const id = /^token (\S+) for alice \(read\)/.exec(r.stderr)![1]!;
    assert.equal((await fetch(`${pr.baseUrl}/api/v1/messages`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
    const listed = cli(['tokens', 'list', '--user', 'alice']);
    assert.match(listed.stdout, new RegExp(`^${id}\\talice\\tread\\tactive`));
    assert.doesNotMatch(listed.stdout, /prt_/);
    assert.equal(cli(['tokens', 'revoke', id]).status, 0);
    assert.equal((await fetch(`${pr.baseUrl}/api/v1/messages`, { headers: { authorization: `Bearer ${token}` } })).status, 401);
    assert.equal(cli(['tokens', 'add', 'nobody', '--name', 'x']).status, 67);
    assert.equal(cli(['tokens', 'add', 'alice']).status, 64);
  });

  it('records what the command line did in the audit log, as cli:<login name>', async () => {
    const page = (await (await pr.api('/api/v1/audit?limit=500')).json()) as { items: { actor: string; action: string; object: string }[] };
    const mine = page.items.filter((e) => e.actor.startsWith('cli:')).map((e) => `${e.action} ${e.object.replace(/^token:.*/, 'token')}`).reverse();
    assert.deepEqual(mine, ['user.create user:alice', 'user.create user:carol', 'user.update user:carol', 'user.update user:carol', 'user.update user:carol', 'user.delete user:carol', 'token.create token', 'token.revoke token']);
  });
});
