import { parseArgs } from 'node:util';
import { loadConfig } from '../../config/load.js';
import { migrate, openDb } from '../../store/db.js';
import type { Command } from '../command.js';

export const migrateCmd: Command = {
  name: 'migrate',
  summary: 'apply pending database migrations and exit',
  usage: `usage: postroom migrate [--config FILE]

Applies every pending migration to the configured store (SQLite or PostgreSQL).
'postroom serve' does this at start too; run it alone before a rolling upgrade.`,
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
    const config = loadConfig(values.config);
    const db = openDb(config.store.database, config.dataDir, { poolSize: 1 });
    try {
      const applied = await migrate(db);
      process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'up to date\n');
    } finally {
      await db.close();
    }
    return 0;
  },
};
