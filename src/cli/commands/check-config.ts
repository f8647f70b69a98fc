import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../../config/load.js';
import type { Command } from '../command.js';

export const checkConfig: Command = {
  name: 'check-config',
  summary: 'validate a config file; each error names its key path',
  usage: `usage: postroom check-config FILE

Validates FILE against the config schema (environment overrides applied) and prints
each problem as 'key.path: what is wrong'. Exit 0 when valid, 78 (EX_CONFIG) when not.
Every key, its type and default: docs/config.md; docs/postroom.schema.json lets an editor
check the file as you type.`,
  async run(argv) {
    // An unknown option is a usage error (64), not a file name that cannot be read (78).
    const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
    const file = positionals[0];
    if (!file || positionals.length > 1) {
      process.stderr.write(`${this.usage}\n`);
      return 64;
    }
    try {
      loadConfig(file);
    } catch (e) {
      if (e instanceof ConfigError) {
        process.stderr.write(`${e.message}\n`);
        return 78;
      }
      throw e;
    }
    process.stdout.write(`${file}: ok\n`);
    return 0;
  },
};
