import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pgTestSchema } from '../helpers/test-db.js';
import { tempDir, testBackend } from '../helpers/env.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/postroom.js');

/** `postroom objects …` against a store of its own, through the built binary. */
describe('postroom objects', async () => {
  const tmp = tempDir();
  const pgs = testBackend() === 'postgres' ? await pgTestSchema() : undefined;
  const config = path.join(tmp.dir, 'postroom.yaml');
  writeFileSync(
    config,
    `dataDir: ${tmp.dir}\nobjects: { prefix: ogo, domain: example.org }\n${pgs ? `store: { database: '${pgs.url}' }\n` : ''}`,
  );
  after(async () => {
    await pgs?.drop();
    tmp.cleanup();
  });
  // --config first: after '--' every word is the workflow's argv.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('POSTROOM_')));
  const run = (...args: string[]) => spawnSync(process.execPath, [bin, 'objects', '--config', config, ...args], { env, encoding: 'utf8', timeout: 30_000 });

  it('creates a folder and a workflow, shows their addresses, grants and lists', () => {
    const f = run('folder', 'create', 'Scans', '--collect', 'application/pdf', '--collect', 'image/*');
    assert.equal(f.status, 0, f.stderr);
    const [id, name, address] = f.stdout.trim().split('\t');
    assert.equal(name, 'Scans');
    assert.equal(address, `ogo+${id}@example.org`);
    const w = run('workflow', 'create', 'count', '--', 'wc', '-w');
    assert.equal(w.status, 0, w.stderr);
    assert.match(w.stdout, /\tcount\togo\+wf\+count@example\.org$/m);
    const g = run('grant', id, 'network', 'wr');
    assert.equal(g.status, 0, g.stderr);
    assert.equal(g.stdout.trim(), `${id}\tnetwork\trw`);
    const show = JSON.parse(run('show', id, '--json').stdout);
    assert.deepEqual(show.properties, { collectMIMEType: ['application/pdf', 'image/*'] });
    assert.deepEqual(show.acl, [{ principal: 'network', permissions: 'rw' }]);
    const workflows = JSON.parse(run('workflows', '--json').stdout);
    assert.deepEqual(workflows[0].action.command, ['wc', '-w']);
    assert.match(run('folders').stdout, /\tScans\t/);
  });

  it('exits 67 for an unknown object and 64 for a bad form', () => {
    assert.equal(run('show', '999999').status, 67);
    assert.equal(run('grant', '999999', 'network', 'rw').status, 67);
    assert.equal(run('frobnicate').status, 64);
    assert.equal(run('workflow', 'create', 'x').status, 64, 'neither a command nor a URL');
    assert.equal(run('folder', 'create', 'y', '--collect', 'not a type').status !== 0, true);
  });
});
