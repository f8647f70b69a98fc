import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
// ajv is fastify's JSON Schema validator (a dependency of fastify 5); here it stands in for an
// editor's YAML language server, which validates with the same draft-07 schema.
import { Ajv } from 'ajv';
import fc from 'fast-check';
import { parseDocument } from 'yaml';
import { validateConfig } from '../../src/config/load.js';
import { configJsonSchema, configKeys, configReference } from '../../src/config/reference.js';
import { formatDuration, formatListen, formatSize, parseDuration, parseSize } from '../../src/config/units.js';

const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
const schema = configJsonSchema();
const keys = configKeys(schema);
// Formats (uri) are an editor's business; zod checks URLs itself.
const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(schema);

/** Problems the editor's schema finds in a config, as `/smtp/listen must match pattern …`. */
function editorProblems(config: unknown): string[] {
  return validate(config) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

describe('config reference (docs/config.md, docs/postroom.schema.json)', () => {
  it('the files are what `npm run config-docs` writes from the schema', () => {
    assert.equal(read('docs/postroom.schema.json'), `${JSON.stringify(schema, null, 2)}\n`, 'docs/postroom.schema.json is stale: run `npm run config-docs`');
    assert.equal(read('docs/config.md'), configReference(schema), 'docs/config.md is stale: run `npm run config-docs`');
  });

  it('reaches every key: nested, inside lists and inside each target kind', () => {
    const paths = new Set(keys.map((k) => k.path));
    for (const p of ['smtp.greetingDelay.allowlisted', 'smtp.auth.users[].password', 'routes[].deliver[].spool.control', 'routes[].retry.jitter', 'mail.outboundRetry.maxDelay']) {
      assert.ok(paths.has(p), p);
    }
    assert.ok(keys.length > 150, `${keys.length} keys`);
  });

  it('every key has a description', () => {
    const undescribed = keys.filter((k) => !k.schema.description?.trim()).map((k) => k.path);
    assert.deepEqual(undescribed, [], 'add a .describe() to these keys of the config schema');
  });

  it('every default is in the reference, written in its unit', () => {
    const defaults = keys.filter((k) => k.schema.default !== undefined);
    assert.ok(defaults.length > 80, `${defaults.length} defaults`);
    const smtp = schema.properties!.smtp.properties!;
    assert.equal(smtp.listen.default, '127.0.0.1:2525');
    assert.equal(smtp.maxMessageSize.default, '200MiB');
    assert.equal(smtp.socketTimeout.default, '1m');
    const doc = read('docs/config.md');
    assert.match(doc, /\| `smtp\.socketTimeout` \| duration \| `1m` \|/);
    assert.match(doc, /\| `delivery\.dedupWindow` \| duration \| `7d` \|/);
  });

  it('each default, written back into a config, means the default', () => {
    // What the reference shows must parse to what Postroom uses when the key is left out.
    const byPath = new Map(keys.map((k) => [k.path, k]));
    const withDefaults: Record<string, any> = {};
    for (const k of keys) {
      const names = k.path.split('.');
      // Keys of optional maps (smtp.auth) or list items have defaults only where the map is given.
      const ancestors = names.slice(0, -1).map((_, i) => names.slice(0, i + 1).join('.'));
      if (k.path.includes('[') || k.schema.default === undefined || ancestors.some((a) => byPath.get(a)?.schema.default === undefined)) continue;
      let at = withDefaults;
      for (const name of names.slice(0, -1)) at = at[name] ??= {};
      at[names.at(-1)!] = k.schema.default;
    }
    assert.ok(withDefaults.smtp.greetingDelay.others, 'nested defaults are written too');
    assert.deepEqual(validateConfig(withDefaults), validateConfig({}));
  });

  it('an editor accepts what check-config accepts: the shipped example', () => {
    assert.deepEqual(editorProblems(parseDocument(read('config/postroom.example.yaml')).toJS()), []);
    assert.deepEqual(editorProblems(parseDocument(read('config/examples/fax.yaml')).toJS()), []);
  });

  it('an editor flags typos, bad units and bad listen addresses as check-config does', () => {
    for (const [config, key] of [
      [{ smtp: { greetingDelay: { allowlistd: '1s' } } }, '/smtp/greetingDelay'],
      [{ smtp: { socketTimeout: '30 sec' } }, '/smtp/socketTimeout'],
      [{ smtp: { maxMessageSize: '10 parsecs' } }, '/smtp/maxMessageSize'],
      [{ http: { listen: '8025' } }, '/http/listen'],
      [{ routes: [{ name: 'r', deliver: [{ spool: { dir: 'x', format: 'pdf' } }] }] }, '/routes/0/deliver/0/spool/format'],
    ] as const) {
      assert.throws(() => validateConfig(config), /invalid configuration/, JSON.stringify(config));
      const problems = editorProblems(config);
      assert.ok(problems.some((p) => p.startsWith(key)), `${JSON.stringify(config)}: ${problems.join('; ')}`);
    }
  });

  it('a default written in its unit reads back as the same number (any duration, any size)', () => {
    fc.assert(fc.property(fc.nat({ max: 400 * 86_400_000 }), (ms) => parseDuration(formatDuration(ms)) === ms));
    fc.assert(fc.property(fc.nat({ max: 2 ** 40 }), (bytes) => parseSize(formatSize(bytes)) === bytes));
    assert.equal(formatListen({ host: '::1', port: 25 }), '[::1]:25');
  });

  it('the editor schema accepts exactly the durations, sizes and addresses Postroom reads', () => {
    const smtp = schema.properties!.smtp.properties!;
    const pattern = (s: typeof smtp.listen) => new RegExp((s.pattern ?? s.anyOf?.[0].pattern) as string);
    const reads = (parse: (v: string) => unknown) => (v: string) => {
      try {
        parse(v);
        return true;
      } catch {
        return false;
      }
    };
    const cases = [
      { pattern: pattern(smtp.socketTimeout), reads: reads(parseDuration), near: /^\s?\d{1,3}(\.\d{1,2})?(ms|s|m|h|d|x|)(\d{1,2}(ms|s|m|h|d|w))?\s?$/ },
      { pattern: pattern(smtp.maxMessageSize), reads: reads(parseSize), near: /^\s?\d{1,3}(\.\d)?\s?(k|K|kb|KiB|mib|MB|g|GiB|b|B|x|ki|)\s?$/ },
      { pattern: pattern(smtp.listen), reads: reads((v) => validateConfig({ smtp: { listen: v } }, {})), near: /^\s?(\[[:0-9a-f]{1,6}\]|[a-z.:]{1,6}|\[x|x\]):\d{1,5}\s?$/ },
    ];
    for (const c of cases) {
      fc.assert(
        fc.property(fc.oneof(fc.string(), fc.stringMatching(c.near)), (v) => {
          const tooHighPort = /:(\d+)\s*$/.exec(v) && Number(/:(\d+)\s*$/.exec(v)![1]) > 65535;
          if (c.pattern.test(v) !== c.reads(v) && !tooHighPort) throw new Error(`${c.pattern}: '${v}'`);
        }),
      );
    }
  });

  it('the example opens with the editor schema, relative to itself', () => {
    const first = read('config/postroom.example.yaml').split('\n')[0];
    assert.equal(first, '# yaml-language-server: $schema=../docs/postroom.schema.json');
  });
});
