import { parseArgs } from 'node:util';
import { openBlobStore } from '../../store/open-blobs.js';
import { reindexMessages, type ReindexProgress } from '../../store/reindex.js';
import { progressPrinter } from '../progress.js';
import type { Command } from '../command.js';
import { withStore } from '../with-store.js';

const USAGE = `usage: postroom reindex [--config FILE]

Rebuilds the search index (what free text, from:, to:, rcpt: and subject: search in) from every
parsed message: its subject, sender, recipients and the start of its text body. Parsing feeds
the index as mail arrives; run this after upgrading from a version without the index (messages
kept before it are found by their headers until then, not by their bodies), or after restoring
a backup taken without it. Safe while 'postroom serve' runs. On a terminal it draws a progress
bar on stderr; otherwise it prints a line every 10 seconds.`;

export const reindexCmd: Command = {
  name: 'reindex',
  summary: 'rebuild the search index from the kept messages',
  usage: USAGE,
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
    return withStore(values.config, async (db, config) => {
      const printer = progressPrinter<ReindexProgress>(
        process.stderr,
        'reindex',
        (p, rate) => `${p.done.toLocaleString('en')} / ${p.total.toLocaleString('en')} messages, ${rate.toLocaleString('en')}/s`,
      );
      const result = await reindexMessages(db, openBlobStore(config, db), (p) => printer.update(p));
      printer.end(result);
      return 0;
    });
  },
};
