import { parseArgs } from 'node:util';
import { openBlobStore } from '../../store/open-blobs.js';
import { reindexMessages, type ReindexProgress } from '../../store/reindex.js';
import type { Command } from '../command.js';
import { withStore } from '../with-store.js';

const USAGE = `usage: postroom reindex [--config FILE]

Rebuilds the search index (what free text, from:, to:, rcpt: and subject: search in) from every
parsed message: its subject, sender, recipients and the start of its text body. Parsing feeds
the index as mail arrives; run this after upgrading from a version without the index (messages
kept before it are found by their headers until then, not by their bodies), or after restoring
a backup taken without it. Safe while 'postroom serve' runs. On a terminal it draws a progress
bar on stderr; otherwise it prints a line every 10 seconds.`;

/** A bar on a terminal, a line now and then elsewhere (a log file, CI). */
function progressPrinter(out: NodeJS.WriteStream): { update(p: ReindexProgress): void; end(p: ReindexProgress): void } {
  const started = Date.now();
  let lastLine = 0;
  const rate = (done: number) => Math.round(done / Math.max(0.001, (Date.now() - started) / 1000));
  const text = (p: ReindexProgress) => `${p.done.toLocaleString('en')} / ${p.total.toLocaleString('en')} messages, ${rate(p.done).toLocaleString('en')}/s`;
  return {
    update(p) {
      if (out.isTTY) {
        const width = 30;
        const full = p.total ? Math.round((width * p.done) / p.total) : width;
        out.write(`\r[${'#'.repeat(full)}${' '.repeat(width - full)}] ${text(p)}\x1b[K`);
      } else if (Date.now() - lastLine >= 10_000) {
        lastLine = Date.now();
        out.write(`reindex: ${text(p)}\n`);
      }
    },
    end(p) {
      out.write(`${out.isTTY ? '\r\x1b[K' : ''}reindex: ${text(p)}, done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    },
  };
}

export const reindexCmd: Command = {
  name: 'reindex',
  summary: 'rebuild the search index from the kept messages',
  usage: USAGE,
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
    return withStore(values.config, async (db, config) => {
      const printer = progressPrinter(process.stderr);
      const result = await reindexMessages(db, openBlobStore(config, db), (p) => printer.update(p));
      printer.end(result);
      return 0;
    });
  },
};
