import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';

/**
 * A config that failed validation: every problem with the key path that holds it. Internal, not
 * a MailError: it is thrown while a command starts, before any mail is taken, and the commands
 * print it and exit 78 (EX_CONFIG). The one that runs with a message in hand, `postroom
 * deliver`, turns it into CONFIG (4.3.5, exit 75), so the MTA keeps the mail while it is fixed.
 */
export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    readonly file?: string,
  ) {
    super(`${file ? `${file}: ` : ''}invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** A zod issue path as written in the config: `routes[0].deliver[0].spool.dir`. */
export function keyPath(p: readonly PropertyKey[]): string {
  return p.reduce<string>(
    (acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k)),
    '',
  );
}

/** Each issue of a failed validation as `key.path: message` (unknown keys one line each). */
export function problemsOf(err: z.ZodError): string[] {
  return err.issues.map((i) => {
    const at = keyPath(i.path) || '(top level)';
    if (i.code === 'unrecognized_keys') {
      return i.keys.map((k) => `${at === '(top level)' ? k : `${at}.${k}`}: unknown key`).join('\n  ');
    }
    return `${at}: ${i.message}`;
  });
}

/**
 * Environment variables that win over the file, whatever it says, and the key each sets. One
 * table for applyEnv and the config reference (docs/config.md).
 */
export const ENV_OVERRIDES: readonly { env: string; key: readonly [string] | readonly [string, string] }[] = [
  { env: 'POSTROOM_DATA_DIR', key: ['dataDir'] },
  { env: 'POSTROOM_SMTP_LISTEN', key: ['smtp', 'listen'] },
  { env: 'POSTROOM_HTTP_LISTEN', key: ['http', 'listen'] },
  { env: 'POSTROOM_API_TOKEN', key: ['http', 'apiToken'] },
  { env: 'POSTROOM_DATABASE_URL', key: ['store', 'database'] },
  { env: 'POSTROOM_SECRET_KEY', key: ['secretKey'] },
];

function applyEnv(raw: Record<string, any>, env: NodeJS.ProcessEnv): Record<string, any> {
  const out = structuredClone(raw);
  for (const { env: name, key } of ENV_OVERRIDES) {
    const value = env[name];
    if (!value) continue;
    if (key.length === 1) {
      out[key[0]] = value;
    } else {
      const section = out[key[0]] && typeof out[key[0]] === 'object' ? out[key[0]] : (out[key[0]] = {});
      section[key[1]] = value;
    }
  }
  return out;
}

/** Validate a parsed config object (after env overrides); throws ConfigError naming key paths. */
export function validateConfig(raw: unknown, env: NodeJS.ProcessEnv = {}, file?: string): Config {
  if (raw !== null && raw !== undefined && (typeof raw !== 'object' || Array.isArray(raw))) {
    throw new ConfigError(['(top level): must be a mapping of keys to values'], file);
  }
  const result = configSchema.safeParse(applyEnv((raw ?? {}) as Record<string, any>, env));
  if (!result.success) throw new ConfigError(problemsOf(result.error), file);
  const cfg = result.data;
  cfg.dataDir = path.resolve(cfg.dataDir);
  return cfg;
}

/** Load the config: FILE (or $POSTROOM_CONFIG) if given, else embedded defaults; env wins. */
export function loadConfig(file?: string, env: NodeJS.ProcessEnv = process.env): Config {
  const chosen = file ?? env.POSTROOM_CONFIG;
  let raw: unknown = {};
  if (chosen) {
    let text: string;
    try {
      text = readFileSync(chosen, 'utf8');
    } catch (e) {
      throw new ConfigError([`cannot read: ${(e as Error).message}`], chosen);
    }
    try {
      raw = parseYaml(text, { prettyErrors: true });
    } catch (e) {
      throw new ConfigError([`not valid YAML: ${(e as Error).message}`], chosen);
    }
  }
  return validateConfig(raw, env, chosen);
}
