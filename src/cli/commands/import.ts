import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { asMailError, mailError, SYSEXITS, toStderrLine, toSysexit } from '../../core/errors.js';
import { openLocalIntake } from '../../assemble.js';
import { emlFiles, maildirFiles } from '../../ingress/import/files.js';
import { MBOX_VARIANTS, type MboxVariant } from '../../ingress/import/mbox.js';
import { Importer, type ImportCounts, type ImportSource } from '../../ingress/import/run.js';
import { isMailbox } from '../../ingress/smtp-address.js';
import type { Command } from '../command.js';
import { progressLine } from './progress.js';

const USAGE = `usage: postroom import mbox [--format auto|mboxrd|mboxo|mboxcl2] [OPTIONS] FILE…|-
       postroom import maildir [OPTIONS] DIR…
       postroom import eml [OPTIONS] FILE…|DIR…|-

Keeps existing mail in the configured store through the same intake door as SMTP and
'postroom deliver': each message byte for byte, with its envelope taken from the message.
A running 'postroom serve' on the store parses and routes what is kept at once (its parse
poll); otherwise the next one started does.

  mbox      one message per From_ line. --format (default auto): mboxrd takes one '>' off
            every '>From ', '>>From '… line; mboxo only off '>From '; mboxcl2 reads each body by
            its Content-Length: and unquotes nothing. auto: mboxcl2 when the first message's
            Content-Length ends exactly at the next From_ line, else mboxrd.
  maildir   the files in DIR/cur and DIR/new; the flags of each name (:2,FRS…) are kept as
            \\Flagged, \\Answered, \\Seen, \\Draft, \\Deleted, $Forwarded.
  eml       one message per file; a DIR: every regular file directly in it; - standard input.

Envelope: recipients from --to (repeat it), else X-Original-To:, else Delivered-To:, else To:;
the sender from --from, else Return-Path:, else the From_ line's (mbox), else <>.
  --no-route     keep only: status 'kept', never routed (an archive, not mail to act on)
  --no-trace     no Received: trace header recorded for the imported messages
  --config FILE  the config (else $POSTROOM_CONFIG, else the defaults)

Running it twice keeps nothing twice: a message is the same when its Message-ID, bytes and
recipients are (without a Message-ID: its bytes and recipients). An mbox import stopped by
Ctrl-C or kill -9 continues where it was on the next run. Progress goes to standard output:
a bar on a terminal, a line every 10 seconds otherwise, and a summary at the end.

Exit status (sysexits): 0 every message kept or already there | 65 a message could not be
kept (no recipient, empty, too large: the first is named on stderr) or a file is no mbox |
66 a FILE or DIR cannot be read | 64 usage | 75 the store is unavailable or the run was
interrupted (run it again: it continues) | 78 bad config.`;

const KINDS = ['mbox', 'maildir', 'eml'] as const;

async function sourcesOf(kind: (typeof KINDS)[number], paths: string[], variant: MboxVariant | 'auto'): Promise<ImportSource[]> {
  const out: ImportSource[] = [];
  for (const p of paths) {
    if (p === '-' && kind !== 'maildir') {
      out.push(kind === 'mbox' ? { kind: 'mbox', path: '-', variant } : { kind: 'stdin', stream: process.stdin });
      continue;
    }
    if (kind === 'mbox') out.push({ kind: 'mbox', path: p, variant });
    else if (kind === 'maildir') for (const f of await maildirFiles(p)) out.push({ kind: 'file', ...f });
    else {
      let isDir: boolean;
      try {
        isDir = (await stat(p)).isDirectory();
      } catch (err) {
        throw mailError('NO_INPUT', `${p}: ${(err as Error).message}`);
      }
      if (isDir) for (const f of await emlFiles(p)) out.push({ kind: 'file', ...f });
      else out.push({ kind: 'file', path: p, flags: [] });
    }
  }
  return out;
}

async function totalBytes(sources: ImportSource[]): Promise<number | undefined> {
  let n = 0;
  for (const s of sources) {
    if (s.kind === 'stdin' || s.path === '-') return undefined;
    try {
      n += (await stat(s.path)).size;
    } catch {
      // Named later as it is read (NO_INPUT).
    }
  }
  return n;
}

/** The exit status of a finished import: the store's failure first, then bad input, then refusals. */
export function importExit(c: ImportCounts): number {
  if (c.failed) return SYSEXITS.TEMPFAIL;
  if (c.interrupted) return SYSEXITS.TEMPFAIL;
  if (c.badInput) return toSysexit(c.badInput.error);
  if (c.refused) return SYSEXITS.DATAERR;
  return SYSEXITS.OK;
}

export const importCmd: Command = {
  name: 'import',
  summary: 'keep the messages of an mbox, a Maildir or .eml files (resumable, nothing kept twice)',
  usage: USAGE,
  async run(argv) {
    const err = (s: string) => process.stderr.write(`postroom import: ${s}\n`);
    const { values: v, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        format: { type: 'string', default: 'auto' },
        from: { type: 'string' },
        to: { type: 'string', multiple: true },
        'no-route': { type: 'boolean', default: false },
        'no-trace': { type: 'boolean', default: false },
        config: { type: 'string', short: 'c' },
      },
    });
    const [kind, ...paths] = positionals;
    if (!KINDS.includes(kind as (typeof KINDS)[number]) || !paths.length) {
      err(kind && !KINDS.includes(kind as never) ? `unknown kind '${kind}' (mbox, maildir or eml)` : 'name what to import');
      process.stderr.write(`${USAGE}\n`);
      return SYSEXITS.USAGE;
    }
    const variant = v.format as MboxVariant | 'auto';
    if (variant !== 'auto' && !MBOX_VARIANTS.includes(variant)) {
      err(`--format takes auto, ${MBOX_VARIANTS.join(', ')}; not '${v.format}'`);
      return SYSEXITS.USAGE;
    }
    if (v.from !== undefined && v.from !== '' && !isMailbox(v.from)) {
      err(`--from '${v.from}' is not an address (local@domain, or '' for <>)`);
      return SYSEXITS.USAGE;
    }
    for (const t of v.to ?? []) {
      if (!isMailbox(t)) {
        err(`--to '${t}' is not an address (local@domain)`);
        return SYSEXITS.USAGE;
      }
    }
    if (paths.filter((p) => p === '-').length > 1) {
      err('standard input (-) can be named once');
      return SYSEXITS.USAGE;
    }
    let config: Config;
    try {
      config = loadConfig(v.config);
    } catch (e) {
      if (e instanceof ConfigError) {
        process.stderr.write(`${e.message}\n`);
        return SYSEXITS.CONFIG;
      }
      throw e;
    }
    let sources: ImportSource[];
    try {
      sources = await sourcesOf(kind as (typeof KINDS)[number], paths, variant);
    } catch (e) {
      err(toStderrLine(e));
      return toSysexit(e);
    }
    const ac = new AbortController();
    const stop = () => {
      if (ac.signal.aborted) process.exit(SYSEXITS.TEMPFAIL);
      err('stopping: the messages in flight are finished and the place is saved (Ctrl-C again: at once; a rerun continues either way)');
      ac.abort();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    let local;
    try {
      local = await openLocalIntake(config);
    } catch (e) {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      const me = asMailError(e);
      err(me.code === 'INTERNAL' ? `4.3.0 The store is unavailable: ${(e as Error).message}` : toStderrLine(me));
      return SYSEXITS.TEMPFAIL;
    }
    const progress = progressLine(process.stdout, 'import', await totalBytes(sources));
    let counts: ImportCounts;
    try {
      const importer = new Importer(
        { accept: local.intake.accept, db: local.db },
        {
          from: v.from,
          to: v.to,
          route: !v['no-route'],
          trace: !v['no-trace'] && config.smtp.traceHeader,
          maxSize: config.smtp.maxMessageSize,
          headerLimit: config.parse.maxHeaderSize,
          signal: ac.signal,
          onProgress: (c) => progress.update(c.read, c.bytes),
        },
      );
      counts = await importer.run(sources);
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      await local.close().catch(() => {});
    }
    progress.end(
      counts.read,
      counts.bytes,
      `kept ${counts.kept}, already kept ${counts.duplicates}, refused ${counts.refused}${counts.interrupted ? ' (interrupted: run it again to continue)' : ''}`,
    );
    if (counts.failed) err(`${counts.failed.where}: ${toStderrLine(counts.failed.error)} (run it again: it continues)`);
    if (counts.badInput) err(`${counts.badInput.where}: ${toStderrLine(counts.badInput.error)}`);
    if (counts.firstRefusal) err(`${counts.firstRefusal.where}: ${toStderrLine(counts.firstRefusal.error)}${counts.refused > 1 ? ` (and ${counts.refused - 1} more)` : ''}`);
    return importExit(counts);
  },
};
