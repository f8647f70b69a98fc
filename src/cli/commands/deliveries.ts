import { parseArgs } from 'node:util';
import type { Db } from '../../store/db.js';
import { getAttempts, getDelivery, listDeliveries, retryDelivery, type DeliveryRecord } from '../../store/deliveries.js';
import { redact } from '../../delivery/redact.js';
import { listPausedTargets, resumeTarget } from '../../store/paused-targets.js';
import type { Command } from '../command.js';
import { withStore } from '../with-store.js';

const USAGE = `usage: postroom deliveries list [--status pending|done|failed|dead] [--route NAME] [--message ID] [--limit N] [--json] [--config FILE]
       postroom deliveries show ID [--json] [--config FILE]
       postroom deliveries retry ID [--config FILE]
       postroom deliveries paused [--json] [--config FILE]
       postroom deliveries resume ROUTE TARGET_INDEX [--config FILE]

Reads the delivery queue from the configured store (SQLite or PostgreSQL), so it works
whether or not 'postroom serve' runs. 'retry' makes a delivery pending again with a fresh
attempt budget (a pending one is only made due now); a running server picks it up at its
next poll. 'paused' lists route targets paused because their endpoint answered 410 Gone
(their deliveries wait, unattempted); 'resume' lets them go again. Exit 67 (EX_NOUSER) when
the delivery does not exist or the target is not paused.`;

function line(d: DeliveryRecord): string {
  const when = d.status === 'pending' ? `next ${d.nextAttemptAt}` : d.updatedAt;
  const why = d.status === 'done' ? (d.receipt?.summary ?? '') : (d.lastError ?? '');
  return [d.id, d.status.padEnd(7), String(d.attempts).padStart(2), d.route, d.kind, d.messageId, when, why.replace(/\s+/g, ' ').slice(0, 120)].join('\t');
}

const withDb = <T>(configFile: string | undefined, fn: (db: Db) => Promise<T>) => withStore(configFile, (db) => fn(db));

export const deliveriesCmd: Command = {
  name: 'deliveries',
  summary: 'list, show and replay deliveries (the delivery queue and its dead letters)',
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        status: { type: 'string' },
        route: { type: 'string' },
        message: { type: 'string' },
        limit: { type: 'string', default: '100' },
        json: { type: 'boolean', default: false },
      },
    });
    const [sub, id, ...extra] = positionals;
    const out = (s: string) => process.stdout.write(`${s}\n`);
    if (sub === 'paused' && !id) {
      const rows = await withDb(values.config, (db) => listPausedTargets(db.kysely));
      if (values.json) out(JSON.stringify(rows, null, 2));
      else for (const p of rows) out([p.route, p.targetIndex, p.kind, p.destination ?? '', `${p.pending} pending`, p.pausedAt, p.reason].join('\t'));
      return 0;
    }
    if (sub === 'resume' && id && extra.length === 1) {
      const index = Number(extra[0]);
      if (!Number.isInteger(index) || index < 0) {
        process.stderr.write('postroom deliveries: TARGET_INDEX must be a whole number (0 = the first target of the route)\n');
        return 64;
      }
      if (!(await withDb(values.config, (db) => resumeTarget(db, id, index)))) {
        process.stderr.write(`postroom deliveries: target ${index} of route ${id} is not paused\n`);
        return 67;
      }
      out(`resumed target ${index} of route ${id}; a running server picks its deliveries up at its next poll`);
      return 0;
    }
    if (sub === 'list' && !id) {
      if (values.status && !['pending', 'held', 'done', 'failed', 'dead'].includes(values.status)) {
        process.stderr.write(`postroom deliveries: --status must be pending, done, failed or dead\n`);
        return 64;
      }
      const limit = Number(values.limit);
      if (!Number.isInteger(limit) || limit < 1) {
        process.stderr.write('postroom deliveries: --limit must be a positive integer\n');
        return 64;
      }
      const rows = await withDb(values.config, (db) =>
        listDeliveries(db.kysely, { status: values.status, route: values.route, message: values.message, limit }),
      );
      if (values.json) out(JSON.stringify(rows.map((d) => ({ ...d, params: redact(d.params) })), null, 2));
      else rows.forEach((d) => out(line(d)));
      return 0;
    }
    if ((sub === 'show' || sub === 'retry') && id && !extra.length) {
      const result = await withDb(values.config, async (db) => {
        const d = sub === 'retry' ? await retryDelivery(db, id) : await getDelivery(db.kysely, id);
        return d && { d, attempts: await getAttempts(db.kysely, d.id) };
      });
      if (!result) {
        process.stderr.write(`postroom deliveries: no delivery ${id}\n`);
        return 67;
      }
      const { d, attempts } = result;
      if (values.json) {
        out(JSON.stringify({ ...d, params: redact(d.params), history: attempts }, null, 2));
        return 0;
      }
      out(line(d));
      if (sub === 'show') {
        out(`params\t${JSON.stringify(redact(d.params))}`);
        out(`recipients\t${d.recipients.join(', ')}`);
        for (const a of attempts) {
          out(`  #${a.n}\t${a.startedAt}\t${a.outcome ?? 'unfinished'}\t${a.error ?? ''}${a.nextAttemptAt ? `\tretry at ${a.nextAttemptAt}` : ''}`);
        }
      }
      return 0;
    }
    process.stderr.write(`${USAGE}\n`);
    return 64;
  },
};
