#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's test runner (through tsx). Node 20's --test takes no
// globs, so the files are listed here. When POSTROOM_TEST_DATABASE_URL is set the whole suite
// runs a second time against PostgreSQL.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const filter = process.argv.slice(2);

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.test.ts')) out.push(path.relative(root, p));
  }
  return out.sort();
}

let files = find(path.join(root, 'test'));
if (filter.length) files = files.filter((f) => filter.some((x) => f.includes(x)));
if (!files.length) {
  console.error('no test files matched');
  process.exit(1);
}

// Tests that run the real binary (bin/postroom.js → dist/) need a build of the current source.
const build = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], {
  cwd: root,
  stdio: 'inherit',
});
if (build.status !== 0) process.exit(build.status ?? 1);

const backends = ['sqlite'];
if (process.env.POSTROOM_TEST_DATABASE_URL) backends.push('postgres');

let failed = false;
for (const backend of backends) {
  console.log(`\n# backend: ${backend} (${files.length} files)`);
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-reporter=spec', ...files],
    { cwd: root, stdio: 'inherit', env: { ...process.env, POSTROOM_TEST_BACKEND: backend } },
  );
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
