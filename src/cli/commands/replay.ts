import os from 'node:os';
import { parseArgs } from 'node:util';
import { recordAudit } from '../../store/audit-log.js';
import { REPLAYABLE, replayMatching, type ReplayableStatus } from '../../store/delivery-replay.js';
import type { Command } from '../command.js';
import { withStore } from '../with-store.js';

const USAGE = `usage: postroom replay [--status dead|failed|done|held] [--route NAME] [--target KIND] [--destination D]
                      [--message ID] [--error TEXT] [--since TIME] [--until TIME] [--cap N] [--rate N]
                      [--dry-run] [--json] [--config FILE]

Replays every delivery matching the filter (dead letters by default): each is made pending
again with a fresh attempt budget, due at a staggered time so the target is handed at most
--rate a second (default 10), however many match. At most --cap are replayed (default 10000,
in id order); the rest stay as they are. --dry-run only counts. The filter and the counts are
written to the audit log. Works on the configured store (SQLite or PostgreSQL) whether or not
'postroom serve' runs; a running server picks the deliveries up as they fall due.

  --status S       dead (default), failed, done, or held (releases quarantined mail)
  --route NAME     deliveries of this route
  --target KIND    of this target kind (webhook, smtp, folder…)
  --destination D  landing where the target names D (a folder, a group, a recipient)
  --message ID     deliveries of one message
  --error TEXT     whose last error holds TEXT (case-insensitive)
  --since TIME     last changed (a dead letter: died) at or after TIME (ISO 8601)
  --until TIME     last changed before TIME

Exit 0 when done (also when nothing matched), 64 on a wrong option.`;

const actor = () => `cli:${os.userInfo().username}`;

function bad(why: string): number {
  process.stderr.write(`postroom replay: ${why}\n'postroom replay --help' shows its usage.\n`);
  return 64;
}

export const replayCmd: Command = {
  name: 'replay',
  summary: 'replay the deliveries matching a filter (dead letters by default), paced; --dry-run counts',
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        status: { type: 'string', default: 'dead' },
        route: { type: 'string' },
        target: { type: 'string' },
        destination: { type: 'string' },
        message: { type: 'string' },
        error: { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
        cap: { type: 'string', default: '10000' },
        rate: { type: 'string', default: '10' },
        'dry-run': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
    });
    if (positionals.length) return bad(`unexpected argument '${positionals[0]}'`);
    if (!(REPLAYABLE as readonly string[]).includes(values.status)) return bad(`--status must be ${REPLAYABLE.join(', ')} (pending deliveries are queued already)`);
    const cap = Number(values.cap);
    if (!Number.isInteger(cap) || cap < 1) return bad('--cap must be a positive whole number');
    const perSecond = Number(values.rate);
    if (!Number.isFinite(perSecond) || perSecond < 0.1 || perSecond > 1000) return bad('--rate must be between 0.1 and 1000 (a second)');
    for (const k of ['since', 'until'] as const) {
      if (values[k] !== undefined && Number.isNaN(Date.parse(values[k]))) return bad(`--${k} must be a time (ISO 8601, e.g. 2026-01-31T12:00:00Z)`);
    }
    const filter = {
      status: values.status as ReplayableStatus,
      ...(values.route ? { route: values.route } : {}),
      ...(values.target ? { target: values.target } : {}),
      ...(values.destination !== undefined ? { destination: values.destination } : {}),
      ...(values.message ? { message: values.message } : {}),
      ...(values.error ? { error: values.error } : {}),
      ...(values.since ? { since: values.since } : {}),
      ...(values.until ? { until: values.until } : {}),
    };
    const dryRun = values['dry-run'];
    const r = await withStore(values.config, async (db) => {
      const result = await replayMatching(db, filter, { cap, perSecond, dryRun });
      await recordAudit(db, { actor: actor(), action: 'delivery.replay', object: 'deliveries', detail: { filter, cap, perSecond, dryRun, matched: result.matched, replayed: result.replayed } });
      return result;
    });
    const out = (s: string) => process.stdout.write(`${s}\n`);
    if (values.json) out(JSON.stringify({ dryRun, ...r }, null, 2));
    else if (dryRun) out(`${r.matched} match; ${r.selected} would be replayed${r.lastDueAt ? `, ${perSecond} a second, the last due ${r.lastDueAt}` : ''} (dry run: nothing changed)`);
    else out(`${r.matched} match; replayed ${r.replayed}${r.lastDueAt ? `, ${perSecond} a second, the last due ${r.lastDueAt}` : ''}`);
    return 0;
  },
};
