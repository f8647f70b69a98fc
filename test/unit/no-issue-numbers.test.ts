import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'fixtures' && name !== 'results' && name !== 'profiles') out.push(...files(p));
    } else if (/\.(ts|mjs|js|md|yaml)$/.test(name)) out.push(p);
  }
  return out;
}

describe('comments and docs say why, not which ticket', () => {
  it('no source, test, bench, script or doc cites an issue number (a reader has no tracker)', () => {
    const found: string[] = [];
    for (const dir of ['src', 'test', 'bench', 'scripts', 'docs', 'config']) {
      for (const f of files(path.join(root, dir))) {
        if (f === new URL(import.meta.url).pathname) continue;
        readFileSync(f, 'utf8')
          .split('\n')
          .forEach((line, i) => {
            if (/\bissues? #?\d+\b/i.test(line)) found.push(`${path.relative(root, f)}:${i + 1}: ${line.trim()}`);
          });
      }
    }
    for (const f of ['README.md']) {
      const text = readFileSync(path.join(root, f), 'utf8');
      if (/\bissues? #?\d+\b/i.test(text)) found.push(f);
    }
    assert.deepEqual(found, []);
  });
});
