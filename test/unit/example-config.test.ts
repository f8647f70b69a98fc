import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isMap, isPair, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import type { z } from 'zod';
import { loadConfig, validateConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const examplePath = path.join(root, 'config/postroom.example.yaml');
const exampleText = readFileSync(examplePath, 'utf8');

/**
 * Every key path a schema accepts: `smtp.listen`, `smtp.auth.users[].username`; a record's
 * free keys are `*`. Wrappers (optional, default, transform pipes, unions) are looked through,
 * so a key added anywhere in the schema shows up here.
 */
function schemaKeyPaths(schema: z.ZodType, prefix = '', out = new Set<string>(), depth = 0): Set<string> {
  if (depth > 30) return out; // a recursive (lazy) schema: its keys have been seen by now
  const def = (schema as any)._zod.def;
  const walk = (s: z.ZodType, p = prefix) => schemaKeyPaths(s, p, out, depth + 1);
  switch (def.type) {
    case 'object':
      for (const [key, value] of Object.entries(def.shape as Record<string, z.ZodType>)) {
        const p = prefix ? `${prefix}.${key}` : key;
        out.add(p);
        walk(value, p);
      }
      break;
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
    case 'nonoptional':
    case 'success':
      walk(def.innerType);
      break;
    case 'pipe':
      walk(def.in);
      walk(def.out);
      break;
    case 'array':
      walk(def.element, `${prefix}[]`);
      break;
    case 'union':
      for (const option of def.options) walk(option);
      break;
    case 'intersection':
      walk(def.left);
      walk(def.right);
      break;
    case 'record':
      out.add(`${prefix}.*`); // free keys (INI sections of a spool control file) are keys too
      walk(def.valueType, `${prefix}.*`);
      break;
    case 'lazy':
      walk(def.getter());
      break;
    default:
      break; // a leaf: string, number, enum, literal, transform…
  }
  return out;
}

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

/** Key paths present in a YAML value, in the same notation as schemaKeyPaths. */
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

/** Whether a schema path (maybe with `*` for record keys) names a document path. */
function covers(schemaPath: string, docPaths: Set<string>): boolean {
  if (!schemaPath.includes('*')) return docPaths.has(schemaPath);
  const re = new RegExp(`^${schemaPath.replace(/[.[\]]/g, '\\$&').replace(/\*/g, '[^.\\[]+')}$`);
  return [...docPaths].some((p) => re.test(p));
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

  it('mentions every key of the config schema', () => {
    const docPaths = documentKeyPaths(parseDocument(uncommented(exampleText)).toJS());
    const schemaPaths = schemaKeyPaths(configSchema);
    assert.ok(schemaPaths.has('smtp.greetingDelay.allowlisted'), 'the schema walk reaches nested keys');
    assert.ok(schemaPaths.has('smtp.auth.users[].password'), 'the schema walk reaches into arrays');
    const undocumented = [...schemaPaths].filter((p) => !covers(p, docPaths));
    assert.deepEqual(undocumented, [], 'document these keys in config/postroom.example.yaml');
  });

  it('mentions no key the schema does not have', () => {
    const schemaPaths = [...schemaKeyPaths(configSchema)];
    const docPaths = documentKeyPaths(parseDocument(uncommented(exampleText)).toJS());
    const unknown = [...docPaths].filter((p) => !schemaPaths.some((s) => covers(s, new Set([p]))));
    assert.deepEqual(unknown, []);
  });

  it('has a comment above every section and every option in it', () => {
    assert.deepEqual(uncommentedKeys(uncommented(exampleText)), []);
  });
});
