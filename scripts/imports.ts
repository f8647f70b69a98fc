// The import graph of src/ and the one rule it must keep: layers import downward only.
// `node --import tsx scripts/imports.ts` prints the folders in import cycles, the cycles between
// files, and every upward import; test/unit/layers.test.ts fails on any of them.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * The layers, top first. A module may import from its own layer and any layer below it, never
 * from one above. Entries are paths under src/ (a folder ends in `/`); the longest entry that
 * matches a file names its layer. docs/architecture.md quotes this list.
 */
export const LAYERS: readonly (readonly [layer: string, paths: readonly string[]])[] = [
  // The web console's browser modules: served as files by api/routes/console.ts, imported by
  // nothing on the server; they import each other only.
  ['console (browser)', ['console/']],
  ['cli', ['cli/']],
  ['app', ['app.ts', 'assemble.ts', 'pipeline.ts']],
  ['api', ['api/']],
  ['ingress', ['ingress/']],
  ['intake', ['intake/']],
  ['delivery', ['delivery/']],
  // The whole config: it assembles the schema piece each layer below owns (the routes with the
  // target registry, each target's params, objects, groups, mail accounts).
  ['config schema', ['config/schema.ts', 'config/load.ts', 'config/reference.ts', 'config/reload.ts']],
  ['targets', ['targets/']],
  ['outbound', ['outbound/']],
  ['domain', ['domain/']],
  ['routing', ['routing/']],
  ['mime', ['mime/']],
  ['store', ['store/']],
  ['net', ['net/']],
  // Config pieces every layer reads: units (durations, sizes), the retry policy.
  ['config pieces', ['config/']],
  ['telemetry', ['telemetry/']],
  ['core', ['core/', 'types/']],
];

/** The layer of a module (a path under src/, with `/`), or undefined when no entry names it. */
export function layerOf(file: string): number | undefined {
  let best: { index: number; length: number } | undefined;
  LAYERS.forEach(([, paths], index) => {
    for (const p of paths) {
      const hit = p.endsWith('/') ? file.startsWith(p) : file === p;
      if (hit && (!best || p.length > best.length)) best = { index, length: p.length };
    }
  });
  return best?.index;
}

function sources(dir: string, root = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p, root);
    return /\.(ts|js)$/.test(e.name) ? [path.relative(root, p).split(path.sep).join('/')] : [];
  });
}

/** Every module under `srcDir` and the modules of src/ it imports (static, type-only, dynamic, re-exports). */
export function readImports(srcDir: string): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of sources(srcDir)) {
    const { importedFiles } = ts.preProcessFile(readFileSync(path.join(srcDir, file), 'utf8'), true, true);
    const to = new Set<string>();
    for (const { fileName } of importedFiles) {
      if (!fileName.startsWith('.')) continue;
      to.add(path.posix.normalize(path.posix.join(path.posix.dirname(file), fileName)).replace(/\.js$/, '.ts'));
    }
    graph.set(file, to);
  }
  return graph;
}

/**
 * The folder a module sits in (first level under src/, `.` for src/ itself); a module LAYERS
 * names by itself (config/schema.ts) counts as its layer, not its folder.
 */
export function folderOf(file: string): string {
  const named = LAYERS.find(([, paths]) => paths.includes(file));
  if (named) return named[0];
  return file.includes('/') ? file.slice(0, file.indexOf('/')) : '.';
}

/** Strongly connected components with more than one member (Tarjan). */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

export interface ImportReport {
  /** Groups of folders that import each other, directly or round about. */
  folderCycles: string[][];
  /** Groups of modules that import each other. */
  fileCycles: string[][];
  /** Imports from a lower layer to a higher one, as `from -> to (lower layer -> higher layer)`. */
  upward: string[];
  /** Modules no entry of LAYERS names. */
  unlayered: string[];
}

export function checkImports(srcDir: string): ImportReport {
  const graph = readImports(srcDir);
  const folders = new Map<string, Set<string>>();
  for (const [file, to] of graph) {
    const from = folderOf(file);
    const set = folders.get(from) ?? new Set<string>();
    folders.set(from, set);
    for (const t of to) if (folderOf(t) !== from) set.add(folderOf(t));
  }
  const upward: string[] = [];
  const unlayered: string[] = [];
  for (const [file, to] of graph) {
    const a = layerOf(file);
    if (a === undefined) {
      unlayered.push(file);
      continue;
    }
    for (const t of to) {
      const b = layerOf(t);
      if (b !== undefined && b < a) upward.push(`${file} -> ${t} (${LAYERS[a][0]} -> ${LAYERS[b][0]})`);
    }
  }
  return { folderCycles: cycles(folders), fileCycles: cycles(graph), upward: upward.sort(), unlayered: unlayered.sort() };
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const srcDir = path.resolve(process.argv[2] ?? path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'src'));
  const r = checkImports(srcDir);
  const inCycles = new Set(r.folderCycles.flat());
  const folders = new Set([...readImports(srcDir).keys()].map(folderOf));
  console.log(`folders in import cycles: ${inCycles.size} of ${folders.size}`);
  for (const c of r.folderCycles) console.log(`  ${c.join(' ')}`);
  console.log(`module cycles: ${r.fileCycles.length} (${r.fileCycles.flat().length} modules)`);
  for (const c of r.fileCycles) console.log(`  ${c.join(' ')}`);
  console.log(`upward imports: ${r.upward.length}`);
  for (const u of r.upward) console.log(`  ${u}`);
  if (r.unlayered.length) console.log(`modules in no layer: ${r.unlayered.join(' ')}`);
}
