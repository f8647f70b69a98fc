import { parseArgs } from 'node:util';
import { openRetention } from '../../app.js';
import { formatSize } from '../../config/units.js';
import { openBlobStore } from '../../store/open-blobs.js';
import { convertToIncrementalVacuum, type PurgeReport, type PurgeSummary } from '../../store/retention.js';
import type { Command } from '../command.js';
import { withStore } from '../with-store.js';

const USAGE = `usage: postroom purge [--dry-run] [--vacuum] [--json] [--config FILE]

Removes the kept messages the retention limits let go (retention: maxAge, maxMessages, maxBytes,
and each route's own retention:), as 'postroom serve' does every retention.interval. Only
messages whose deliveries are all finished (done, failed or dead, or none) and that are not
pinned ('postroom messages pin ID') or held for moderation go; documents, work packages and group
posts keep their own copies. Rows are removed in batches of retention.batchSize, then the blobs
no row names any more (the orphan sweep, after store.sweep.grace), then SQLite gives the free
pages back to the file system. On PostgreSQL one node purges at a time: while another holds the
lease this exits 75 having done nothing. Safe while 'postroom serve' runs.

  --dry-run  remove nothing: print what would go (messages, raw bytes, oldest and newest
             received, per route; '(no route)' for messages no route took)
  --vacuum   SQLite: turn on incremental auto-vacuum for a database made before retention
             existed (VACUUM rewrites the whole file: needs as much free disk as the database,
             and holds the write lock until done, so best with 'serve' stopped)
  --json     print the report as JSON
See docs/retention.md.`;

const when = (s: string | null) => s ?? '-';

function lines(r: PurgeReport): string[] {
  const verb = r.dryRun ? 'would remove' : 'removed';
  const out = [`${verb} ${r.messages} message${r.messages === 1 ? '' : 's'}, ${r.bytes} bytes (${formatSize(r.bytes)}), received ${when(r.oldest)} .. ${when(r.newest)}`];
  const routes = Object.entries(r.routes).sort(([a], [b]) => a.localeCompare(b));
  if (routes.length) {
    out.push(['route', 'messages', 'bytes', 'oldest', 'newest'].join('\t'));
    for (const [route, s] of routes as [string, PurgeSummary][]) out.push([route || '(no route)', s.messages, s.bytes, when(s.oldest), when(s.newest)].join('\t'));
  }
  if (!r.dryRun) out.push(`blob bytes no row names any more: ${r.blobBytesFreed}; blobs removed by the sweep: ${r.blobsRemoved}; database pages given back: ${r.pagesFreed}`);
  return out;
}

export const purgeCmd: Command = {
  name: 'purge',
  summary: 'remove the kept messages the retention limits let go (--dry-run: only say what)',
  usage: USAGE,
  async run(argv) {
    let values;
    try {
      ({ values } = parseArgs({
        args: argv,
        options: {
          config: { type: 'string', short: 'c' },
          'dry-run': { type: 'boolean', default: false },
          vacuum: { type: 'boolean', default: false },
          json: { type: 'boolean', default: false },
        },
      }));
    } catch (err) {
      process.stderr.write(`postroom purge: ${(err as Error).message}\n${USAGE}\n`);
      return 64;
    }
    const dryRun = values['dry-run'];
    return withStore(values.config, async (db, config) => {
      const retention = openRetention(config, { db, blobs: openBlobStore(config, db) });
      try {
        if (!retention.enabled) process.stderr.write('postroom purge: no retention limit is set (retention: or a route\'s retention:): nothing is removed\n');
        const report = await retention.purge({ dryRun });
        if (report.skipped) {
          process.stderr.write('postroom purge: another node is removing messages now (it holds the retention lease); nothing done\n');
          return 75;
        }
        process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${lines(report).join('\n')}\n`);
        if (values.vacuum && !dryRun) {
          if (db.dialect !== 'sqlite') process.stderr.write('postroom purge: --vacuum is for SQLite; PostgreSQL\'s autovacuum makes the space reusable\n');
          else process.stderr.write((await convertToIncrementalVacuum(db)) ? 'vacuumed: incremental auto-vacuum is on from now\n' : 'incremental auto-vacuum was already on: nothing to do\n');
        }
        return 0;
      } finally {
        await retention.close();
      }
    });
  },
};
