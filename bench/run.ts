// npm run bench [-- --quick] [--only NAME]... [--profile] [--no-build]
//   --only NAME  scenarios whose name, or cases whose id (smtp.4KiB.s20.kept), contains NAME
//
// Runs every scenario in bench/scenarios/index.ts against the built `postroom serve` (a child
// process on a fresh temporary data directory) and prints a table; the same numbers go to
// bench/results/<timestamp>.json and bench/results/latest.json. Targets are printed, never
// asserted: performance numbers live here, not in the test suite.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { formatTable } from './lib/table.js';
import type { BenchContext, Measurement } from './lib/types.js';
import { scenarios } from './scenarios/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
    profile: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
  },
});

function need(cmd: string, pkg: string): void {
  if (spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd]).status !== 0) {
    console.error(`bench: ${cmd} is not installed (apt-get install -y ${pkg})`);
    process.exit(69);
  }
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

need('smtp-source', 'postfix');
need('smtp-sink', 'postfix');
if (!values['no-build']) {
  // The bench measures what ships: bin/postroom.js over dist/, built from the current source.
  const r = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], {
    cwd: root,
    stdio: 'inherit',
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const only = values.only ?? [];
const byName = (name: string) => only.some((o) => name.includes(o));
const someByName = scenarios.some((s) => byName(s.name));
// --only NAME: the scenarios so named run whole; when it names none, it picks cases by id.
const chosen = someByName ? scenarios.filter((s) => byName(s.name)) : scenarios;

// Everything else running on the machine competes for the same cores and disk.
const loadBefore = os.loadavg()[0];
if (loadBefore > os.cpus().length / 2) {
  console.error(`bench: load average is ${loadBefore.toFixed(1)} on ${os.cpus().length} cores; numbers will be low and noisy`);
}

const started = new Date();
const stamp = started.toISOString().replace(/[:.]/g, '-');
const profileDir = values.profile ? path.join(root, 'bench/profiles', stamp) : undefined;
if (profileDir) mkdirSync(profileDir, { recursive: true });
const ctx: BenchContext = {
  quick: values.quick,
  profileDir,
  // os.tmpdir() must be a real disk, not tmpfs, or fsync costs nothing and the numbers lie.
  tmpRoot: process.env.POSTROOM_BENCH_TMP ?? os.tmpdir(),
  log: (line) => process.stderr.write(`bench: ${line}\n`),
  wants: (id) => !only.length || someByName || byName(id),
};

const measurements: Measurement[] = [];
const failures: { scenario: string; error: string }[] = [];
for (const s of chosen) {
  ctx.log(`scenario ${s.name}: ${s.description}`);
  try {
    measurements.push(...(await s.run(ctx)));
  } catch (err) {
    // One broken scenario must not throw away the numbers the others took minutes to get.
    const error = err instanceof Error ? err.message : String(err);
    failures.push({ scenario: s.name, error });
    ctx.log(`scenario ${s.name} FAILED: ${error}`);
  }
}
if (!measurements.length && !failures.length) {
  console.error(`bench: nothing matched --only ${only.join(' ')} (scenarios: ${scenarios.map((s) => s.name).join(', ')})`);
  process.exit(64);
}

const result = {
  startedAt: started.toISOString(),
  finishedAt: new Date().toISOString(),
  quick: values.quick,
  commit: gitCommit(),
  machine: {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryMiB: Math.round(os.totalmem() / 1024 / 1024),
    node: process.version,
    kernel: os.release(),
    loadAverageBefore: Number(loadBefore.toFixed(2)),
    loadAverageAfter: Number(os.loadavg()[0].toFixed(2)),
  },
  scenarios: chosen.map((s) => s.name),
  measurements,
  failures,
};
const dir = path.join(root, 'bench/results');
mkdirSync(dir, { recursive: true });
const json = `${JSON.stringify(result, null, 2)}\n`;
writeFileSync(path.join(dir, `${stamp}.json`), json);
writeFileSync(path.join(dir, 'latest.json'), json);

console.log(
  `\nPostroom bench ${result.commit ?? ''} on ${result.machine.cpus} cores, load ${result.machine.loadAverageBefore} → ${result.machine.loadAverageAfter}${values.quick ? ' (--quick)' : ''}\n`,
);
console.log(formatTable(measurements));
console.log(`\nresults: bench/results/${stamp}.json (and latest.json)${profileDir ? `\nprofiles: ${path.relative(root, profileDir)}` : ''}`);
if (failures.length) {
  console.log(`\nFAILED: ${failures.map((f) => `${f.scenario}: ${f.error.split('\n')[0]}`).join('\n        ')}`);
  process.exitCode = 1;
}
