import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { checkImports, LAYERS, layerOf, readImports } from '../../scripts/imports.js';

const src = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../src');

describe('layers import downward only (scripts/imports.ts)', () => {
  const report = checkImports(src);

  it('every module under src/ sits in a layer', () => {
    assert.deepEqual(report.unlayered, []);
  });

  it('no module imports from a layer above its own', () => {
    assert.deepEqual(report.upward, []);
  });

  it('no folders import each other, directly or round about', () => {
    assert.deepEqual(report.folderCycles, []);
  });

  it('no modules import each other, directly or round about', () => {
    assert.deepEqual(report.fileCycles, []);
  });

  it('core imports nothing else from src', () => {
    const outside = [...readImports(src)]
      .filter(([file]) => file.startsWith('core/'))
      .flatMap(([file, to]) => [...to].filter((t) => !t.startsWith('core/')).map((t) => `${file} -> ${t}`));
    assert.deepEqual(outside, []);
  });

  it('finds an upward import and a cycle in a tree that has them', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'postroom-layers-'));
    try {
      mkdirSync(path.join(dir, 'core'));
      mkdirSync(path.join(dir, 'cli'));
      writeFileSync(path.join(dir, 'core', 'a.ts'), "import type { B } from '../cli/b.js';\nexport type A = B;\n");
      writeFileSync(path.join(dir, 'cli', 'b.ts'), "import type { A } from '../core/a.js';\nexport type B = A | 1;\n");
      const r = checkImports(dir);
      assert.deepEqual(r.upward, ['core/a.ts -> cli/b.ts (core -> cli)']);
      assert.deepEqual(r.folderCycles, [['cli', 'core']]);
      assert.deepEqual(r.fileCycles, [['cli/b.ts', 'core/a.ts']]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('puts fetching with the ingresses and the two halves of config/ where they belong', () => {
    assert.equal(layerOf('core/errors.ts'), LAYERS.length - 1);
    assert.equal(layerOf('config/units.ts'), LAYERS.findIndex(([name]) => name === 'config pieces'));
    assert.equal(layerOf('config/schema.ts'), LAYERS.findIndex(([name]) => name === 'config schema'));
    assert.equal(layerOf('ingress/fetch/imap.ts'), layerOf('ingress/smtp.ts'));
  });
});
