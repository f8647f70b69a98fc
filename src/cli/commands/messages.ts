import { parseArgs } from 'node:util';
import type { StoredMessage } from '../../core/message.js';
import { listMessages, setPinned } from '../../store/messages.js';
import type { Command } from '../command.js';
import { withStore } from '../with-store.js';

const STATUSES = ['received', 'kept', 'routed', 'held', 'delivered', 'failed', 'rejected', 'draft', 'sending', 'sent', 'error', 'raw'];
const PARSE = ['pending', 'parsed', 'raw'];

const USAGE = `usage: postroom messages list [--status STATUS] [--parse pending|parsed|raw] [--ingress NAME] [--limit N] [--json] [--config FILE]
       postroom messages pin ID [--config FILE]
       postroom messages unpin ID [--config FILE]

pin: retention ('postroom purge', and 'serve' every retention.interval) never removes a pinned
message, whatever its age; unpin lets the limits take it again. Each prints the id and when it
was pinned ('-' when not pinned).

Lists kept messages, newest first, from the configured store (SQLite or PostgreSQL), whether or
not 'postroom serve' runs. Two things are told apart:
  --status   the way through routing and delivery: ${STATUSES.slice(0, -1).join(', ')}
             ('raw' is taken as --parse raw, whatever the delivery status)
  --parse    how parsing went: pending (not yet), parsed, raw (could not be parsed; kept whole)
Each line: id, status, parse status, ingress, received at, subject, and the error (a parse
error first, then a routing or delivery error).`;

function line(m: StoredMessage): string {
  const why = [m.parseError, m.error].filter(Boolean).join('; ');
  return [m.id, m.status.padEnd(9), m.parseStatus.padEnd(7), m.ingress, m.receivedAt, (m.subject ?? '').slice(0, 60), why.replace(/\s+/g, ' ').slice(0, 160)].join('\t');
}

export const messagesCmd: Command = {
  name: 'messages',
  summary: 'list kept messages by delivery status and parse outcome; pin or unpin one (kept from retention)',
  usage: USAGE,
  async run(argv) {
    let parsed;
    try {
      parsed = parseArgs({
        args: argv,
        allowPositionals: true,
        options: {
          config: { type: 'string', short: 'c' },
          status: { type: 'string' },
          parse: { type: 'string' },
          ingress: { type: 'string' },
          limit: { type: 'string', default: '100' },
          json: { type: 'boolean', default: false },
        },
      });
    } catch (err) {
      process.stderr.write(`postroom messages: ${(err as Error).message}\n${USAGE}\n`);
      return 64;
    }
    const { values, positionals } = parsed;
    if ((positionals[0] === 'pin' || positionals[0] === 'unpin') && positionals.length === 2) {
      const m = await withStore(values.config, (db) => setPinned(db.kysely, positionals[1], positionals[0] === 'pin'));
      if (!m) {
        process.stderr.write(`postroom messages: no message ${positionals[1]}\n`);
        return 1;
      }
      process.stdout.write(`${m.id}\t${m.pinnedAt ?? '-'}\n`);
      return 0;
    }
    if (positionals.length !== 1 || positionals[0] !== 'list') {
      process.stderr.write(`${USAGE}\n`);
      return 64;
    }
    if (values.status && !STATUSES.includes(values.status)) {
      process.stderr.write(`postroom messages: --status must be one of ${STATUSES.join(', ')}\n`);
      return 64;
    }
    if (values.parse && !PARSE.includes(values.parse)) {
      process.stderr.write(`postroom messages: --parse must be pending, parsed or raw\n`);
      return 64;
    }
    const limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1) {
      process.stderr.write('postroom messages: --limit must be a positive integer\n');
      return 64;
    }
    const rows = await withStore(values.config, (db) =>
      listMessages(db.kysely, { status: values.status, parse: values.parse, ingress: values.ingress, limit }),
    );
    const out = (s: string) => process.stdout.write(`${s}\n`);
    if (values.json) out(JSON.stringify(rows, null, 2));
    else rows.forEach((m) => out(line(m)));
    return 0;
  },
};
