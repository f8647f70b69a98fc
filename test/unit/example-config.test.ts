import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isMap, isPair, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import { loadConfig, validateConfig } from '../../src/config/load.js';
import { configJsonSchema, configKeys } from '../../src/config/reference.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const examplePath = path.join(root, 'config/postroom.example.yaml');
const exampleText = readFileSync(examplePath, 'utf8');

/**
 * The example with its off-by-default options switched on: a line `#key: …` (no space after
 * the '#') opens a commented-out block, and the lines after it at the same indent written
 * `#  …` (two or more spaces) continue it. Removing the '#' is what an operator does too.
 */
function uncommented(text: string): string {
  const lines = text.split('\n');
  let block: string | undefined;
  return lines
    .map((line) => {
      const open = /^(\s*)#([A-Za-z][\w-]*:.*)$/.exec(line);
      if (open) {
        block = open[1];
        return open[1] + open[2];
      }
      if (block !== undefined && line.startsWith(`${block}#  `)) return block + line.slice(block.length + 1);
      block = undefined;
      return line;
    })
    .join('\n');
}

/** Key paths present in a YAML value, in the notation of configKeys: `smtp.auth.users[].username`. */
function documentKeyPaths(value: unknown, prefix = '', out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    for (const item of value) documentKeyPaths(item, `${prefix}[]`, out);
  } else if (value && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      const p = prefix ? `${prefix}.${key}` : key;
      out.add(p);
      documentKeyPaths(v, p, out);
    }
  }
  return out;
}

/** Keys of the first two levels (`smtp`, `smtp.listen`) that have no comment of their own. */
function uncommentedKeys(text: string): string[] {
  const doc = parseDocument(text);
  const missing: string[] = [];
  const visit = (node: Node | null | undefined, prefix: string, level: number) => {
    if (!isMap(node) || level > 2) return;
    node.items.forEach((pair, i) => {
      if (!isPair(pair) || !isScalar(pair.key)) return;
      const p = prefix ? `${prefix}.${String(pair.key.value)}` : String(pair.key.value);
      // The yaml library hangs the comment above a map's first key on the map itself.
      const comment = pair.key.commentBefore || (i === 0 ? node.commentBefore : undefined) || pair.key.comment;
      if (!comment?.trim()) missing.push(p);
      if (!isSeq(pair.value)) visit(pair.value as Node, p, level + 1);
    });
  };
  visit(doc.contents as Node, '', 1);
  return missing;
}

describe('config/postroom.example.yaml', () => {
  it('is a valid config as shipped (check-config accepts it)', () => {
    const config = loadConfig(examplePath, {});
    assert.equal(config.smtp.listen.port, 2525);
    assert.equal(config.http.listen.port, 8025);
  });

  it('still validates with every commented-out option switched on', () => {
    const text = uncommented(exampleText);
    assert.notEqual(text, exampleText, 'the example has commented-out options');
    const config = validateConfig(parseDocument(text).toJS(), {});
    assert.ok(config.smtp.tls, 'tls is among the commented-out options');
    assert.ok(config.smtp.auth?.users.length, 'auth users are among the commented-out options');
  });

  it('as shipped, is the embedded defaults (every value it shows is the default)', () => {
    assert.deepEqual(loadConfig(examplePath, {}), validateConfig({}, {}));
  });

  it('mentions every key of the config schema', () => {
    const docPaths = documentKeyPaths(parseDocument(uncommented(exampleText)).toJS());
    const undocumented = configKeys(configJsonSchema())
      .map((k) => k.path)
      .filter((p) => !docPaths.has(p));
    assert.deepEqual(undocumented, [], 'show these keys in config/postroom.example.yaml (docs/config.md describes them)');
  });

  it('has a comment above every section and every option in it', () => {
    assert.deepEqual(uncommentedKeys(uncommented(exampleText)), []);
  });
});
