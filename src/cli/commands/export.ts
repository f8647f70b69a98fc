import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { ConfigError } from '../../config/load.js';
import { asMailError, mailError, SYSEXITS, toStderrLine, toSysexit } from '../../core/errors.js';
import { parseSearch } from '../../core/message-search.js';
import type { StoredMessage } from '../../core/message.js';
import { MessageListQuery } from '../../api/schemas.js';
import { fromLineOf, mboxrdQuote } from '../../ingress/import/mbox.js';
import { withTrace } from '../../mime/trace.js';
import type { Db } from '../../store/db.js';
import type { MessageFilter } from '../../store/message-filter.js';
import { listMessagePage } from '../../store/messages.js';
import { openBlobStore } from '../../store/open-blobs.js';
import type { BlobStore } from '../../store/ports.js';
import type { Command } from '../command.js';
import { withStore } from '../with-store.js';

/** The filters of GET /api/v1/messages, as --flags of the same names. */
const FILTERS = ['q', 'since', 'until', 'from', 'rcpt', 'subject', 'status', 'parse', 'ingress', 'account', 'folder'] as const;

const USAGE = `usage: postroom export --format mbox|eml --out PATH [--no-trace] [FILTER…] [--config FILE]

Writes kept messages, oldest first, byte for byte as they were received.
  --format mbox   one mboxrd file (every '>*From ' line of a message gains a '>'; a message
                  not ending in a line break gets one, which mbox cannot tell apart); each
                  message after a From_ line with its envelope sender and arrival time.
                  PATH - writes to standard output.
  --format eml    one file per message in the directory PATH (made if missing): ID.eml.
  --no-trace      without Postroom's Received: trace header: exactly the bytes received (the
                  sha256 the API shows). By default the header comes first, as GET
                  /api/v1/messages/ID/raw and forwards send the message on.

FILTER: the filters of GET /api/v1/messages (docs/api.md), with the same syntax:
  --q 'from:alice has:attachment -status:delivered'   --since ISO  --until ISO
  --from S  --rcpt S  --subject S  --status STATUS  --parse pending|parsed|raw
  --ingress NAME  --account ID  --folder ID

'postroom import mbox' of the file (--no-trace) into another store keeps byte-identical messages.
Exit status: 0 written | 64 usage or a bad filter | 73 PATH cannot be written | 75 store unavailable.`;

/** The filter options as the API's query parser reads them: one syntax, one validation. */
export function exportFilter(values: Partial<Record<(typeof FILTERS)[number], string>>): Omit<MessageFilter, 'limit'> {
  const query = Object.fromEntries(FILTERS.filter((k) => values[k] !== undefined).map((k) => [k, values[k]]));
  const parsed = MessageListQuery.omit({ limit: true, cursor: true }).safeParse(query);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw mailError('USAGE', `--${issue.path.join('.')}: ${issue.message}`);
  }
  const { q, ...rest } = parsed.data;
  return { ...rest, search: q?.trim() ? parseSearch(q) : undefined };
}

/** Every message the filter names, oldest first, a page at a time. */
async function* matching(db: Db, filter: Omit<MessageFilter, 'limit'>): AsyncGenerator<StoredMessage> {
  let after: string | undefined;
  for (;;) {
    const { rows } = await listMessagePage(db.kysely, { ...filter, after, oldestFirst: true, limit: 200 });
    for (const m of rows) yield m;
    if (rows.length < 200) return;
    after = rows[rows.length - 1].id;
  }
}

async function raw(blobs: BlobStore, m: StoredMessage, trace: boolean): Promise<Readable> {
  return (await withTrace(trace ? m.trace : null, await blobs.open(m.rawSha256))).stream;
}

async function fsyncFile(file: string): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export const exportCmd: Command = {
  name: 'export',
  summary: 'write kept messages (filtered as GET /api/v1/messages) to an mbox or .eml files, byte for byte',
  usage: USAGE,
  async run(argv) {
    const err = (s: string) => process.stderr.write(`postroom export: ${s}\n`);
    const { values: v, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        format: { type: 'string' },
        out: { type: 'string', short: 'o' },
        'no-trace': { type: 'boolean', default: false },
        config: { type: 'string', short: 'c' },
        ...Object.fromEntries(FILTERS.map((k) => [k, { type: 'string' as const }])),
      },
    });
    if (positionals.length || (v.format !== 'mbox' && v.format !== 'eml') || !v.out) {
      err(positionals.length ? `unexpected argument '${positionals[0]}'` : !v.out ? 'give --out PATH' : '--format takes mbox or eml');
      process.stderr.write(`${USAGE}\n`);
      return SYSEXITS.USAGE;
    }
    let filter: Omit<MessageFilter, 'limit'>;
    try {
      filter = exportFilter(v as unknown as Record<string, string>);
    } catch (e) {
      err(toStderrLine(e));
      return SYSEXITS.USAGE;
    }
    const out = v.out;
    const trace = !v['no-trace'];
    const format = v.format;
    let n = 0;
    let bytes = 0;
    const count = async function* (src: AsyncIterable<Buffer>) {
      for await (const c of src) {
        bytes += c.length;
        yield c;
      }
    };
    try {
      await withStore(v.config, async (db, config) => {
        const blobs = openBlobStore(config, db);
        if (format === 'mbox') {
          async function* all(): AsyncGenerator<Buffer> {
            for await (const m of matching(db, filter)) {
              yield Buffer.from(fromLineOf(m.mailFrom, new Date(m.receivedAt)), 'latin1');
              yield* mboxrdQuote(await raw(blobs, m, trace));
              n++;
            }
          }
          if (out === '-') {
            await pipeline(Readable.from(count(all())), process.stdout as unknown as Writable, { end: false });
            return;
          }
          // Written aside and renamed once whole: a reader never finds half an mbox under PATH.
          const tmp = `${out}.tmp-${process.pid}`;
          try {
            await pipeline(Readable.from(count(all())), createWriteStream(tmp));
            await fsyncFile(tmp);
            await rename(tmp, out);
          } catch (e) {
            await rm(tmp, { force: true });
            throw e;
          }
          return;
        }
        try {
          await mkdir(out, { recursive: true });
        } catch (e) {
          throw mailError('CANT_CREATE', `${out}: ${(e as Error).message}`);
        }
        for await (const m of matching(db, filter)) {
          // Names are our ids ([0-9a-z_-]), never anything from the mail.
          const file = path.join(out, `${m.id}.eml`);
          const tmp = `${file}.tmp-${process.pid}`;
          try {
            await pipeline(count(await raw(blobs, m, trace)), createWriteStream(tmp));
            await fsyncFile(tmp);
            await rename(tmp, file);
          } catch (e) {
            await rm(tmp, { force: true });
            throw e;
          }
          n++;
        }
      });
    } catch (e) {
      if (e instanceof ConfigError) {
        process.stderr.write(`${e.message}\n`);
        return SYSEXITS.CONFIG;
      }
      const code = (e as NodeJS.ErrnoException)?.code;
      if (code && /^E(ACCES|NOENT|ROFS|ISDIR|NOTDIR|EXIST|PERM|NOSPC)$/.test(code)) {
        err(toStderrLine(mailError('CANT_CREATE', `${out}: ${(e as Error).message}`)));
        return SYSEXITS.CANTCREAT;
      }
      const me = asMailError(e);
      err(me.code === 'INTERNAL' ? `4.3.0 The store is unavailable: ${(e as Error).message}` : toStderrLine(me));
      return toSysexit(me);
    }
    process.stderr.write(`postroom export: ${n} messages, ${(bytes / (1024 * 1024)).toFixed(1)} MiB written to ${out === '-' ? 'standard output' : out}\n`);
    return SYSEXITS.OK;
  },
};
