import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { call } from '../helpers/mail-accounts.js';
import { tempDir, testBackend } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { cleanEnv } from '../helpers/serve-child.js';
import { pgTestSchema } from '../helpers/test-db.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('tracker setup through the API', () => {
  let pr: TestPostroom;
  before(async () => {
    pr = await startTestPostroom();
  });
  after(() => pr?.close());

  it('users, projects, members, lists and fields; clashes are 400, unknown names 404', async () => {
    const alice = await call(pr.api, 'POST', '/api/v1/tracker/users', { login: 'alice', email: 'Alice@Example.org' }, 201);
    assert.equal(alice.email, 'alice@example.org', 'addresses are kept lower-case');
    const clash = await call(pr.api, 'POST', '/api/v1/tracker/users', { login: 'alice2', email: 'ALICE@example.org' }, 400);
    assert.equal(clash.code, 'INVALID_REQUEST');
    const p = await call(pr.api, 'POST', '/api/v1/tracker/projects', { identifier: 'web', name: 'Web site' }, 201);
    assert.ok(Number.isInteger(p.id));
    await call(pr.api, 'POST', '/api/v1/tracker/projects', { identifier: 'Web Site', name: 'x' }, 400);
    await call(pr.api, 'PUT', '/api/v1/tracker/projects/web/members/alice@example.org', undefined, 204);
    await call(pr.api, 'PUT', '/api/v1/tracker/projects/web/members/nobody', undefined, 404);
    await call(pr.api, 'POST', '/api/v1/tracker/projects/web/categories', { name: 'Design' }, 201);
    await call(pr.api, 'POST', '/api/v1/tracker/projects/web/versions', { name: '1.0' }, 201);
    const shown = await call(pr.api, 'GET', `/api/v1/tracker/projects/${p.id}`);
    assert.deepEqual([shown.identifier, shown.members.map((m: any) => m.login), shown.categories.map((c: any) => c.name), shown.versions.map((v: any) => v.name)], ['web', ['alice'], ['Design'], ['1.0']]);
    await call(pr.api, 'GET', '/api/v1/tracker/projects/nope', undefined, 404);
    await call(pr.api, 'POST', '/api/v1/tracker/types', { name: 'Bug' }, 201);
    const feature = await call(pr.api, 'POST', '/api/v1/tracker/types', { name: 'Feature', isDefault: true }, 201);
    const types = await call(pr.api, 'GET', '/api/v1/tracker/types');
    assert.deepEqual(types.items.map((t: any) => [t.name, t.position, t.isDefault]), [['Bug', 1, false], ['Feature', 2, true]]);
    await call(pr.api, 'POST', '/api/v1/tracker/types', { name: 'Bug' }, 400);
    await call(pr.api, 'DELETE', `/api/v1/tracker/types/${feature.id}`, undefined, 204);
    const list = await call(pr.api, 'POST', '/api/v1/tracker/custom-fields', { name: 'Severity', format: 'list' }, 400);
    assert.match(list.detail, /possibleValues/);
    await call(pr.api, 'POST', '/api/v1/tracker/custom-fields', { name: 'Ref: no', format: 'string' }, 400);
    await call(pr.api, 'GET', '/api/v1/tracker/work-packages/999999', undefined, 404);
    assert.deepEqual(await call(pr.api, 'GET', '/api/v1/tracker/work-packages?project=web'), { items: [], next: null });
  });
});

describe('postroom tracker', () => {
  it('sets a tracker up from the command line; 64 on a clash, 67 for an unknown project', async (t) => {
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const pgs = testBackend() === 'postgres' ? await pgTestSchema() : undefined;
    if (pgs) t.after(() => pgs.drop());
    const config = path.join(tmp.dir, 'postroom.yaml');
    writeFileSync(config, `dataDir: ${JSON.stringify(tmp.dir)}\n${pgs ? `store:\n  database: ${JSON.stringify(pgs.url)}\n` : ''}`);
    const cli = (...args: string[]) =>
      run(process.execPath, [path.join(root, 'bin/postroom.js'), 'tracker', ...args, '--config', config], { env: cleanEnv() }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
    assert.equal((await cli('user', 'add', 'bob', 'bob@example.org', 'Bob', 'Brown')).code, 0);
    assert.match((await cli('project', 'add', 'ops', 'Operations')).stdout, /^\d+\tops\tOperations$/m);
    assert.equal((await cli('member', 'add', 'ops', 'bob')).code, 0);
    assert.equal((await cli('status', 'add', 'In', 'Progress', '--default')).code, 0);
    assert.equal((await cli('field', 'add', 'Severity', '--format', 'list', '--values', 'minor,major')).code, 0);
    assert.equal((await cli('category', 'add', 'ops', 'Servers')).code, 0);
    const shown = JSON.parse((await cli('project', 'show', 'ops', '--json')).stdout);
    assert.deepEqual([shown.members.map((m: any) => m.login), shown.categories.map((c: any) => c.name)], [['bob'], ['Servers']]);
    assert.match((await cli('statuses')).stdout, /^1\tIn Progress\tdefault$/m);
    assert.match((await cli('fields')).stdout, /^Severity\tlist\tminor,major$/m);
    const clash = await cli('user', 'add', 'bob', 'other@example.org');
    assert.equal(clash.code, 64, clash.stderr);
    const bad = await cli('field', 'add', 'X', '--format', 'colour');
    assert.equal(bad.code, 64, bad.stderr);
    const missing = await cli('member', 'add', 'nope', 'bob');
    assert.equal(missing.code, 67);
    assert.match(missing.stderr, /No project nope/);
    assert.equal((await cli('wps', '--project', 'ops')).stdout, '\n');
  });
});
