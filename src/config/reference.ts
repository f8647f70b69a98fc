import { z } from 'zod';
import { ENV_OVERRIDES } from './load.js';
import { configSchema } from './schema.js';
import { formatDuration, formatListen, formatSize, type Unit } from './units.js';

/**
 * The config reference, made from the one config schema (`npm run config-docs`): the JSON
 * Schema editors validate postroom.yaml with (docs/postroom.schema.json) and the reference an
 * operator reads (docs/config.md). Both come from the schema's `.describe()` strings and
 * defaults through zod's public toJSONSchema, so neither can disagree with what `postroom
 * check-config` accepts; test/unit/config-reference.test.ts fails when the files are stale.
 */

/** A JSON Schema node as z.toJSONSchema writes it (only the keywords read here). */
export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  minItems?: number;
  [keyword: string]: unknown;
}

/**
 * A default as the config would write it. zod leaves out defaults of values that a transform
 * turns into something else (a duration's '30s' becomes 30000), since the output is not always
 * valid input; written back in the value's unit they are.
 */
function inputDefault(value: unknown, unit: string | undefined): unknown {
  if (unit === ('duration' satisfies Unit) && typeof value === 'number') return formatDuration(value);
  if (unit === ('size' satisfies Unit) && typeof value === 'number') return formatSize(value);
  if (unit === ('host:port' satisfies Unit) && value && typeof value === 'object') {
    return formatListen(value as { host: string; port: number });
  }
  return JSON.parse(JSON.stringify(value));
}

/** The JSON Schema of the config file, as an editor validates it (draft-07: what yaml-language-server reads). */
export function configJsonSchema(): JsonSchema {
  const generated = z.toJSONSchema(configSchema, {
    target: 'draft-07',
    io: 'input',
    override: ({ zodSchema, jsonSchema }) => {
      if (zodSchema instanceof z.ZodDefault && jsonSchema.default === undefined) {
        jsonSchema.default = inputDefault(zodSchema.parse(undefined), jsonSchema.title) as never;
      }
    },
  }) as JsonSchema;
  const { $schema, ...rest } = generated;
  return {
    $schema,
    $comment: 'Generated from src/config/schema.ts by `npm run config-docs`; do not edit. Reference: docs/config.md.',
    title: 'Postroom configuration',
    description: 'postroom.yaml: validate with `postroom check-config FILE`. Every key is optional; unknown keys are errors.',
    ...rest,
  };
}

/** One documented key: `smtp.greetingDelay.others`, `routes[].deliver[].spool.dir`. */
export interface ConfigKey {
  path: string;
  schema: JsonSchema;
  required: boolean;
}

/**
 * Every key the config accepts, depth first in schema order: object properties, items of
 * lists of objects, and objects inside alternatives (`format: eml` or `format: [txt, eml]`).
 */
export function configKeys(schema: JsonSchema, prefix = ''): ConfigKey[] {
  const out: ConfigKey[] = [];
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    const path = prefix ? `${prefix}.${name}` : name;
    out.push({ path, schema: child, required: schema.required?.includes(name) ?? false });
    out.push(...nestedKeys(child, path));
  }
  return out;
}

function nestedKeys(schema: JsonSchema, path: string): ConfigKey[] {
  if (schema.properties) return configKeys(schema, path);
  if (schema.items) return nestedKeys(schema.items, `${path}[]`);
  return (schema.anyOf ?? []).flatMap((alt) => nestedKeys(alt, path));
}

const SAFE_MAX = Number.MAX_SAFE_INTEGER;

/** 'integer ≥ 1', 'duration', 'one of: reject, normalize', 'string, or a list of them'. */
function typeOf(s: JsonSchema): string {
  if (s.title) return s.title; // a unit: size, duration, host:port
  if (s.enum) return `one of: ${s.enum.map(String).join(', ')}`;
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.anyOf) {
    const [one, many] = s.anyOf;
    // oneOrMany(x): `recipient: a@b` or `recipient: [a@b, c@d]`
    if (s.anyOf.length === 2 && many.type === 'array' && many.items && typeOf(many.items) === typeOf(one)) {
      return `${typeOf(one)}, or a list of them`;
    }
    return [...new Set(s.anyOf.map(typeOf))].join(' or ');
  }
  if (Array.isArray(s.type)) return s.type.join(' or ');
  switch (s.type) {
    case 'array':
      return s.items?.enum ? `list of: ${s.items.enum.map(String).join(', ')}` : `list of ${s.items ? typeOf(s.items) : 'values'}`;
    case 'object':
      return s.properties ? 'map' : 'map of name to value';
    case 'integer':
    case 'number': {
      const low =
        s.exclusiveMinimum !== undefined ? `> ${s.exclusiveMinimum}` : s.minimum !== undefined && s.minimum > -SAFE_MAX ? `≥ ${s.minimum}` : '';
      const high = s.maximum !== undefined && s.maximum < SAFE_MAX ? `≤ ${s.maximum}` : '';
      return [s.type, low, high].filter(Boolean).join(' ').replace(/ ≥ (\S+) ≤ (\S+)$/, ' $1–$2');
    }
    case 'string':
      return s.minLength && s.minLength > 1 ? `string (≥ ${s.minLength} characters)` : 'string';
    default:
      return s.type ?? 'any';
  }
}

/** A YAML flow value: `30s`, `[eml]`, `''`. */
function yamlValue(v: unknown): string {
  if (typeof v === 'string') return v === '' ? "''" : v;
  if (Array.isArray(v)) return `[${v.map(yamlValue).join(', ')}]`;
  if (v && typeof v === 'object') return `{ ${Object.entries(v).map(([k, x]) => `${k}: ${yamlValue(x)}`).join(', ')} }`;
  return String(v);
}

function defaultOf(key: ConfigKey): string {
  const d = key.schema.default;
  if (key.required) return 'required';
  if (d === undefined) return '';
  // A section's `{}` says only that its keys have defaults of their own, listed below it.
  if (d && typeof d === 'object' && !Array.isArray(d) && Object.keys(d).length === 0) return '';
  return `\`${yamlValue(d)}\``;
}

/** Text for a table cell: outside code spans `<` would be HTML, `*` emphasis and `|` a new column. */
function cell(text: string): string {
  return text
    .split('`')
    .map((part, i) => (i % 2 ? part : part.replace(/[<>*|]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '*': '\\*', '|': '\\|' })[c]!)))
    .join('`')
    .replace(/\n/g, ' ');
}

/** Keys of a map this big, or of the items of a list of maps, get a table of their own, so a section stays readable. */
const OWN_TABLE = 4;

function table(keys: ConfigKey[], env: Map<string, string>): string {
  const rows = keys.map((k) => {
    const overridden = env.get(k.path);
    const text = k.schema.description ?? '';
    const description = overridden ? `${text}${/[.)]$/.test(text) ? '' : '.'} \`${overridden}\` wins over the file.` : text;
    return `| \`${k.path}\` | ${cell(typeOf(k.schema))} | ${defaultOf(k)} | ${cell(description)} |`;
  });
  return ['| Key | Type | Default | Description |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** Splits a section's keys into its own table and those of its big nested objects. */
function tables(section: ConfigKey, keys: ConfigKey[], env: Map<string, string>): string[] {
  const big = keys.filter((k) => Object.keys(k.schema.properties ?? {}).length >= OWN_TABLE || k.schema.items?.properties);
  // The innermost big object a key is under; keys under none stay in the section's table.
  const home = (k: ConfigKey) =>
    big.filter((b) => k.path.startsWith(`${b.path}.`) || k.path.startsWith(`${b.path}[]`)).at(-1)?.path ?? section.path;
  const out: string[] = [];
  for (const owner of [section, ...big]) {
    const mine = keys.filter((k) => home(k) === owner.path);
    if (owner !== section) out.push(`### \`${owner.path}\`\n\n${cell(owner.schema.description ?? '')}`);
    if (mine.length) out.push(table(mine, env));
  }
  return out;
}

const INTRO = `# Configuration reference

<!-- Generated from src/config/schema.ts by \`npm run config-docs\`; do not edit. -->

Postroom reads one YAML file (\`postroom serve --config FILE\`, or \`$POSTROOM_CONFIG\`), validated
by one schema; \`postroom check-config FILE\` validates it and names the key path of each problem.
Every key is optional: an empty file, or none, runs on the defaults below. Unknown keys are
errors, so a typo never silently becomes a default.
[\`config/postroom.example.yaml\`](../config/postroom.example.yaml) is a commented example of
every option.

- **size**: a byte count or a number with a unit: \`4096\`, \`512KiB\`, \`200MiB\`, \`1GiB\`, \`10MB\`
  (KB, MB, GB are powers of 1000; KiB, MiB, GiB powers of 1024).
- **duration**: milliseconds or a number with a unit: \`250ms\`, \`30s\`, \`5m\`, \`1h30m\`, \`2d\`.
- **host:port**: a listen address, IPv6 in brackets: \`127.0.0.1:2525\`, \`0.0.0.0:25\`, \`[::1]:25\`.

A key path names where a key sits; \`[]\` stands for each item of a list:

\`\`\`yaml
smtp:
  listen: 0.0.0.0:25              # smtp.listen
routes:
  - name: fax                     # routes[].name
    deliver:
      - spool: { dir: ./spool }   # routes[].deliver[].spool.dir
\`\`\`

Editors with a YAML language server (VS Code's YAML extension, Neovim's yamlls, …) check
the file as you type and show these descriptions when the file starts with

\`\`\`yaml
# yaml-language-server: $schema=/path/to/postroom/docs/postroom.schema.json
\`\`\`

(a relative path is relative to the YAML file). [\`postroom.schema.json\`](postroom.schema.json)
is generated with this page.`;

/** docs/config.md: every key with its type, default and description, a section per top-level key. */
export function configReference(schema: JsonSchema = configJsonSchema()): string {
  const env = new Map(ENV_OVERRIDES.map((o) => [o.key.join('.'), o.env]));
  const keys = configKeys(schema);
  const topLevel = keys.filter((k) => !k.path.includes('.') && !k.path.includes('['));
  const isSection = (k: ConfigKey) => nestedKeys(k.schema, k.path).length > 0;
  const general = topLevel.filter((k) => !isSection(k));
  const sections = topLevel.filter(isSection);
  const envRows = ENV_OVERRIDES.map((o) => `| \`${o.env}\` | \`${o.key.join('.')}\` |`);
  const parts = [
    INTRO,
    '## Environment variables',
    'These win over the file, whatever it says (`POSTROOM_CONFIG` names the file itself).',
    ['| Variable | Sets |', '| --- | --- |', ...envRows].join('\n'),
    `## Sections\n\n${[{ path: 'general' }, ...sections].map((s) => `- [\`${s.path}\`](#${s.path.toLowerCase()})`).join('\n')}`,
    '## general',
    'Keys at the top level of the file.',
    table(general, env),
  ];
  for (const section of sections) {
    const inside = keys.filter((k) => k.path.startsWith(`${section.path}.`) || k.path.startsWith(`${section.path}[]`));
    parts.push(`## ${section.path}`, cell(section.schema.description ?? ''), ...tables(section, inside, env));
  }
  return `${parts.filter(Boolean).join('\n\n')}\n`;
}
