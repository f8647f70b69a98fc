import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startTestPostroom } from '../helpers/postroom.js';
import { testBackend, waitFor } from '../helpers/env.js';
import { DAY, rig } from '../helpers/retention.js';

// The real binary, as `npx postroom` runs it (scripts/run-tests.mjs builds dist/ first).
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/postroom.js');

function postroom(args: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('POSTROOM_')));
  return spawnSync(process.execPath, [bin, ...args], { cwd: root, env, encoding: 'utf8', timeout: 60_000 });
}

describe(`postroom purge and messages pin (${testBackend()})`, () => {
  it('--dry-run prints what would go per route and removes nothing; pin keeps a message; purge removes the rest; unpin lets it go', async () => {
    const r = await rig(testBackend() === 'postgres' ? 'db' : 'fs');
    try {
      const config = path.join(r.db.dir, 'postroom.yaml');
      writeFileSync(
        config,
        [
          `dataDir: ${JSON.stringify(r.db.dir)}`,
          'store:',
          `  database: ${JSON.stringify(r.db.url)}`,
          'retention:',
          '  maxAge: 30d',
          'routes:',
          '  - name: short',
          "    match: { recipient: 'short@example.org' }",
          '    deliver: [{ discard: {} }]',
          '    retention: { maxAge: 1d }',
          '',
        ].join('\n'),
      );
      const a = await r.keep({ ageMs: 40 * DAY, routes: { hooks: 'done' } });
      await r.keep({ ageMs: 2 * DAY, routes: { short: 'done' } });
      await r.keep({ ageMs: 50 * DAY });
      const young = await r.keep({ ageMs: 60_000, routes: { hooks: 'done' } });

      const dry = postroom(['purge', '--dry-run', '--config', config]);
      assert.equal(dry.status, 0, dry.stderr);
      assert.match(dry.stdout, /^would remove 3 messages, \d+ bytes/);
      assert.match(dry.stdout, /^\(no route\)\t1\t\d+\t/m);
      assert.match(dry.stdout, /^hooks\t1\t\d+\t/m);
      assert.match(dry.stdout, /^short\t1\t\d+\t/m);
      assert.equal((await r.ids()).size, 4, 'a dry run removes nothing');

      const pin = postroom(['messages', 'pin', a.id, '--config', config]);
      assert.equal(pin.status, 0, pin.stderr);
      assert.match(pin.stdout, new RegExp(`^${a.id}\\t\\d{4}-\\d\\d-\\d\\dT`));
      assert.equal(postroom(['messages', 'pin', 'no-such-message', '--config', config]).status, 1);

      const run = postroom(['purge', '--json', '--config', config]);
      assert.equal(run.status, 0, run.stderr);
      const report = JSON.parse(run.stdout) as { messages: number; dryRun: boolean; routes: Record<string, { messages: number }> };
      assert.equal(report.dryRun, false);
      assert.equal(report.messages, 2);
      assert.deepEqual([...(await r.ids())].sort(), [a.id, young.id].sort());

      const unpin = postroom(['messages', 'unpin', a.id, '--config', config]);
      assert.equal(unpin.status, 0, unpin.stderr);
      assert.equal(unpin.stdout, `${a.id}\t-\n`);
      const again = postroom(['purge', '--config', config]);
      assert.equal(again.status, 0, again.stderr);
      assert.match(again.stdout, /^removed 1 message, /);
      assert.deepEqual([...(await r.ids())], [young.id]);
    } finally {
      await r.db.cleanup();
    }
  });

  it('without any limit it says so and removes nothing; --help names the options', async () => {
    const r = await rig('db');
    try {
      const config = path.join(r.db.dir, 'postroom.yaml');
      writeFileSync(config, `dataDir: ${JSON.stringify(r.db.dir)}\nstore:\n  database: ${JSON.stringify(r.db.url)}\n`);
      await r.keep({ ageMs: 400 * DAY, routes: { hooks: 'done' } });
      const run = postroom(['purge', '--config', config]);
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stderr, /no retention limit is set/);
      assert.match(run.stdout, /^removed 0 messages/);
      assert.equal((await r.ids()).size, 1);
      const help = postroom(['purge', '--help']);
      assert.equal(help.status, 0);
      for (const opt of ['--dry-run', '--vacuum', '--json']) assert.ok(help.stdout.includes(opt), opt);
    } finally {
      await r.db.cleanup();
    }
  });
});

describe(`serve runs retention (${testBackend()})`, () => {
  it('runs once at start when a limit is set (its time in the metrics), and not at all without one', async () => {
    const pr = await startTestPostroom({ retention: { maxAge: '30d', interval: '1h' } });
    try {
      assert.ok(pr.retention, 'retention is on when a limit is set');
      const last = async () => Number(/^postroom_retention_last_run_timestamp_seconds (\S+)$/m.exec(await pr.metrics.registry.metrics())?.[1] ?? 0);
      await waitFor(async () => (await last()) > 0, 'the run at start');
      const none = await startTestPostroom({});
      assert.equal(none.retention, undefined, 'no limit: no retention runs');
      await none.close();
    } finally {
      await pr.close();
    }
  });
});
