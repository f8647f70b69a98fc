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

function keyPath(p: readonly PropertyKey[]): string {
  return p.reduce<string>(
    (acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k)),
    '',
  );
}

function problemsOf(err: z.ZodError): string[] {
  return err.issues.map((i) => {
    const at = keyPath(i.path) || '(top level)';
    if (i.code === 'unrecognized_keys') {
      return i.keys.map((k) => `${at === '(top level)' ? k : `${at}.${k}`}: unknown key`).join('\n  ');
    }
    return `${at}: ${i.message}`;
  });
}

/** Environment variables that win over the file, whatever it says. */
function applyEnv(raw: Record<string, any>, env: NodeJS.ProcessEnv): Record<string, any> {
  const out = structuredClone(raw);
  const section = (k: string) => (out[k] = out[k] && typeof out[k] === 'object' ? out[k] : {});
  if (env.POSTROOM_DATA_DIR) out.dataDir = env.POSTROOM_DATA_DIR;
  if (env.POSTROOM_SMTP_LISTEN) section('smtp').listen = env.POSTROOM_SMTP_LISTEN;
  if (env.POSTROOM_HTTP_LISTEN) section('http').listen = env.POSTROOM_HTTP_LISTEN;
  if (env.POSTROOM_API_TOKEN) section('http').apiToken = env.POSTROOM_API_TOKEN;
  if (env.POSTROOM_DATABASE_URL) section('store').database = env.POSTROOM_DATABASE_URL;
  if (env.POSTROOM_SECRET_KEY) out.secretKey = env.POSTROOM_SECRET_KEY;
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
