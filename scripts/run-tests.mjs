#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's test runner (through tsx), one child per file, a few
// files at a time. When POSTROOM_TEST_DATABASE_URL is set every file runs a second time against
// PostgreSQL (each test has a schema of its own, so the two backends share the queue).
//
// Why not one `node --test` over all files: it runs files one after another on a 2-core machine
// (its default concurrency is cores - 1), and a file that hangs (a peer that never answers, a
// promise that never settles) hangs the whole run until CI's own limit ends it with nothing said.
// Here each file has a wall-clock limit after which it is killed (with everything it started) and
// reported as failed, and each file's output is printed in one piece when it ends.
//
// Tests skipped for lack of a peer (see requirePeer in test/helpers/env.ts) note it in a file whose
// path goes to them in POSTROOM_TEST_PEER_LOG; the run ends with one line naming them and the
// command that installs the peers.
//
// A file that fails is run once more, alone, after the others. If it passes then, it is reported
// as FLAKY (with the output of the failing run) and does not fail the run: on a 2-core machine
// running three files at once, a test that waits on a peer can lose a race that it wins alone,
// and one such loss should not throw away a whole run. A file that fails twice fails the run.
// The end of each failing run's output is printed again after the summary, where a reader of a
// long log looks first.
//
// Environment: POSTROOM_TEST_JOBS (files at once, default 3), POSTROOM_TEST_FILE_TIMEOUT (seconds
// per file, default 600), POSTROOM_TEST_RETRIES (runs again of a failed file, default 1; 0 turns
// it off). Arguments filter the files by substring.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const filter = process.argv.slice(2);
const jobs = Math.max(1, Number(process.env.POSTROOM_TEST_JOBS ?? 3) || 3);
const fileTimeoutMs = Math.max(10, Number(process.env.POSTROOM_TEST_FILE_TIMEOUT ?? 600) || 600) * 1000;
const retries = Math.max(0, Number(process.env.POSTROOM_TEST_RETRIES ?? 1) || 0);

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

// The chaos suite and the heaviest interop files start the most processes and measure memory or
// time under faults: they go first, so that a long file does not start last and stretch the run.
const weight = (f) => (f.startsWith('test/chaos/') ? 0 : f.startsWith('test/interop/') ? 1 : f.startsWith('test/integration/') ? 2 : 3);
const queue = backends.flatMap((backend) => files.map((file) => ({ file, backend })));
queue.sort((a, b) => weight(a.file) - weight(b.file));

console.log(`# ${files.length} files × ${backends.join(' + ')}, ${jobs} at a time, ${fileTimeoutMs / 1000} s per file at most`);
const started = Date.now();
/** @type {{ file: string, backend: string, ms: number, ok: boolean, timedOut: boolean, counts: Record<string, number> }[]} */
const results = [];

await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, () => worker()));

/** Failed runs, each run again alone (up to `retries` times) once the others are done. */
const flaky = [];
for (const r of results.filter((x) => !x.ok)) {
  for (let i = 0; i < retries; i++) {
    process.stdout.write(`\n# running ${r.file} [${r.backend}] again, alone\n`);
    const again = await runFile(r);
    if (again.ok) {
      flaky.push(r);
      r.ok = true;
      r.flaky = true;
      break;
    }
  }
}

async function worker() {
  for (let job = queue.shift(); job; job = queue.shift()) results.push(await runFile(job));
}

/** One file on one backend in a child of its own (its own process group, so a kill takes its peers too). */
function runFile({ file, backend }) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', file], {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, POSTROOM_TEST_BACKEND: backend, POSTROOM_TEST_PEER_LOG: peerLog },
    });
    const chunks = [];
    child.stdout.on('data', (c) => chunks.push(c));
    child.stderr.on('data', (c) => chunks.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, fileTimeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      const ms = Date.now() - t0;
      const out = Buffer.concat(chunks).toString('utf8');
      const counts = {};
      for (const m of out.matchAll(/^ℹ (tests|pass|fail|skipped|todo|cancelled) (\d+)$/gm)) counts[m[1]] = Number(m[2]);
      const ok = code === 0 && !timedOut;
      const head = `\n## ${file} [${backend}] ${(ms / 1000).toFixed(1)} s ${ok ? 'ok' : timedOut ? `KILLED after ${fileTimeoutMs / 1000} s` : 'FAILED'}`;
      process.stdout.write(`${head}\n${out}`);
      resolve({ file, backend, ms, ok, timedOut, counts, tail: ok ? '' : out.split('\n').slice(-80).join('\n') });
    });
  });
}

const total = (k) => results.reduce((n, r) => n + (r.counts[k] ?? 0), 0);
const failedFiles = results.filter((r) => !r.ok);
console.log(`\n# ${results.length} file runs in ${((Date.now() - started) / 1000).toFixed(0)} s: tests ${total('tests')}, pass ${total('pass')}, fail ${total('fail')}, skipped ${total('skipped')}, cancelled ${total('cancelled')}`);
console.log('# slowest: ' + [...results].sort((a, b) => b.ms - a.ms).slice(0, 8).map((r) => `${path.basename(r.file)} [${r.backend}] ${(r.ms / 1000).toFixed(0)} s`).join(', '));
for (const r of results.filter((x) => x.tail)) console.log(`\n## end of the failing run of ${r.file} [${r.backend}]${r.flaky ? ' (passed when run again)' : ''}\n${r.tail}`);
console.log('');
for (const r of flaky) console.log(`# FLAKY (failed, then passed when run again alone): ${r.file} [${r.backend}]`);
for (const r of failedFiles) console.log(`# ${r.timedOut ? 'KILLED' : 'FAILED'}: ${r.file} [${r.backend}]`);

const line = peerSummary(peerLog);
rmSync(logDir, { recursive: true, force: true });
if (line) console.log(`\n${line}`);
process.exit(failedFiles.length ? 1 : 0);

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
