#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's test runner (through tsx). Node 20's --test takes no
// globs, so the files are listed here. When POSTROOM_TEST_DATABASE_URL is set the whole suite
// runs a second time against PostgreSQL. Tests skipped for lack of a peer (see requirePeer in
// test/helpers/env.ts) note it in a file whose path goes to them in POSTROOM_TEST_PEER_LOG; the
// run ends with one line naming them and the command that installs the peers.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
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

const logDir = mkdtempSync(path.join(os.tmpdir(), 'postroom-peers-'));
const peerLog = path.join(logDir, 'skipped.jsonl');
let failed = false;
for (const backend of backends) {
  console.log(`\n# backend: ${backend} (${files.length} files)`);
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-reporter=spec', ...files],
    { cwd: root, stdio: 'inherit', env: { ...process.env, POSTROOM_TEST_BACKEND: backend, POSTROOM_TEST_PEER_LOG: peerLog } },
  );
  if (r.status !== 0) failed = true;
}
const line = peerSummary(peerLog);
rmSync(logDir, { recursive: true, force: true });
if (line) console.log(`\n${line}`);
process.exit(failed ? 1 : 0);

/**
 * One line: per missing peer, how many tests (or suites) were skipped and in which files, and
 * the one command that installs them all. Empty when nothing was skipped for a peer.
 */
function peerSummary(file) {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return '';
  }
  /** @type {Map<string, { n: number, files: Set<string> }>} */
  const byPeer = new Map();
  // The same test skipped on both backends counts once.
  for (const l of new Set(text.split('\n').filter(Boolean))) {
    const { peers, file: f } = JSON.parse(l);
    const key = peers.join(' + ');
    const e = byPeer.get(key) ?? { n: 0, files: new Set() };
    e.n += 1;
    e.files.add(path.basename(f).replace(/\.test\.ts$/, ''));
    byPeer.set(key, e);
  }
  if (!byPeer.size) return '';
  const parts = [...byPeer].map(([peer, e]) => `${peer} missing: ${e.n} skipped in ${[...e.files].sort().join(', ')}`);
  return `# skipped for lack of peers (${parts.join('; ')}); install them all with: npm run peers`;
}
