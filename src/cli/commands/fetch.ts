import os from 'node:os';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { asMailError, mailError, toStderrLine, toSysexit } from '../../core/errors.js';
import type { TlsMode } from '../../domain/accounts/store.js';
import { imapPass, type PassResult } from '../../ingress/fetch/imap.js';
import { imapClient } from '../../ingress/fetch/imap-session.js';
import { imapFailure } from '../../net/remote-answer.js';
import type { KeepOutcome } from '../../ingress/fetch/keep.js';
import { pop3Pass } from '../../ingress/fetch/pop3.js';
import { Intake, type Accept } from '../../intake/accept.js';
import { migrate, openDb } from '../../store/db.js';
import { openBlobStore } from '../../store/open-blobs.js';
import { createLogger } from '../../telemetry/log.js';
import { createMetrics } from '../../telemetry/metrics.js';
import type { Command } from '../command.js';

const USAGE = `usage: postroom fetch imap --host H [--port P] [--ssl | --starttls] --username U --password W
                          [--folder INBOX] [--move-on-success FOLDER] [--move-on-failure FOLDER] [--delete]
                          [--route NAME | --recipient ADDR] [--no-verify] [--config FILE]
       postroom fetch pop3 --host H [--port P] [--ssl | --starttls] --username U --password W
                          [--apop] [--delete-unprocessed] [--keep] [--route NAME | --recipient ADDR]
                          [--no-verify] [--config FILE]

One pass over a mailbox, for cron (the options of the Redmine/OpenProject mail handlers). Every
message is kept in the configured store first; only then is it moved, flagged or deleted on
the server. A running 'postroom serve' on the same store parses, routes and delivers it within
its parse.pollInterval (2 s by default); otherwise the next one started does.

  imap   takes the messages not \\Seen in --folder; kept ones are moved to --move-on-success,
         or deleted with --delete, else flagged \\Seen. Messages refused for good (too large,
         empty) are moved to --move-on-failure, else flagged \\Seen.
  pop3   takes every message; kept ones are deleted (--keep leaves them; a later run then keeps
         nothing twice). Refused ones stay, unless --delete-unprocessed. --apop logs in with
         APOP (RFC 1939 section 7).
  --recipient ADDR   the envelope recipient routes match (default: the user name, with
                     @HOST added if it has no @)
  --route NAME       give the mail to that configured route's targets instead
  --ssl              TLS from the first byte (default ports 993 / 995); --starttls upgrades
                     first (required); neither: cleartext (143 / 110)

Exit status: 0 every message fetched was kept (or there were none) | 65 a message was refused
(too large, empty) | 75 network error or the store could not keep a message (try again) |
77 login refused | 67 no such folder | 64 usage | 78 bad config. One line on stderr says why.`;

interface Opts {
  protocol: 'imap' | 'pop3';
  host: string;
  port: number;
  tls: TlsMode;
  username: string;
  password: string;
  folder: string;
  recipient: string;
  route: string | null;
  values: Record<string, string | boolean | undefined>;
}

function usage(why: string): never {
  throw Object.assign(mailError('INVALID_REQUEST', why), { usage: true });
}

function options(argv: string[]): Opts & { config?: string } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      ssl: { type: 'boolean', default: false },
      starttls: { type: 'boolean', default: false },
      username: { type: 'string' },
      password: { type: 'string' },
      folder: { type: 'string', default: 'INBOX' },
      'move-on-success': { type: 'string' },
      'move-on-failure': { type: 'string' },
      delete: { type: 'boolean', default: false },
      apop: { type: 'boolean', default: false },
      'delete-unprocessed': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      route: { type: 'string' },
      recipient: { type: 'string' },
      'no-verify': { type: 'boolean', default: false },
      config: { type: 'string', short: 'c' },
    },
  });
  const [protocol, ...extra] = positionals;
  if ((protocol !== 'imap' && protocol !== 'pop3') || extra.length) usage('name imap or pop3');
  if (!values.host || !values.username || values.password === undefined) usage('--host, --username and --password are required');
  if (values.route && values.recipient) usage('--route or --recipient, not both');
  if (values.ssl && values.starttls) usage('--ssl or --starttls, not both');
  const tls: TlsMode = values.ssl ? 'tls' : values.starttls ? 'starttls' : 'none';
  const port = values.port ? Number(values.port) : protocol === 'imap' ? (tls === 'tls' ? 993 : 143) : tls === 'tls' ? 995 : 110;
  if (!Number.isInteger(port) || port < 1 || port > 65535) usage('--port must be a TCP port');
  const recipient = values.recipient ?? (values.username.includes('@') ? values.username : `${values.username}@${values.host}`);
  return { protocol, host: values.host, port, tls, username: values.username, password: values.password, folder: values.folder!, recipient, route: values.route ?? null, values, config: values.config };
}

/** Fetch once with the store of `config`; resolves with what happened. Throws MailError on login/network failure. */
async function fetchOnce(o: Opts, config: Config): Promise<{ res: PassResult; firstRefusal?: KeepOutcome }> {
  const log = createLogger('silent');
  const db = openDb(config.store.database, config.dataDir, { poolSize: 2, statementTimeout: config.store.statementTimeout });
  try {
    await migrate(db);
    const blobs = openBlobStore(config, db);
    const intake = new Intake({ db, blobs, log, metrics: createMetrics(), hostname: config.smtp.hostname ?? os.hostname(), headerLimit: config.parse.maxHeaderSize });
    // No parser runs here: a running `postroom serve` on this store parses and routes what is
    // kept, and the handoff mark has its parse poll take it at once rather than after a grace.
    const accept: Accept = (env, raw, opts) => intake.accept(env, raw, { ...opts, handoff: 'fetch' });
    let firstRefusal: KeepOutcome | undefined;
    const onOutcome = (x: KeepOutcome) => {
      if (x.kind === 'refused') firstRefusal ??= x;
    };
    const scope = `${o.protocol}:${o.host}:${o.port}:${o.username}:${o.folder}`;
    const origin = { ingress: o.protocol, folder: scope, recipient: o.recipient, host: o.host, username: o.username };
    // Recorded with the message so that planning gives it to --route (account: who it was fetched as).
    const link = { account: `cli:${o.username}@${o.host}`, folder: null, route: o.route };
    const settings = { host: o.host, port: o.port, tls: o.tls, username: o.username, password: o.password, tlsVerify: !o.values['no-verify'] };
    try {
      if (o.protocol === 'pop3') {
        const res = await pop3Pass(
          {
            settings: { ...settings, apop: !!o.values.apop },
            origin,
            deleteOnServer: !o.values.keep,
            deleteUnprocessed: !!o.values['delete-unprocessed'],
            link,
            maxSize: config.mail.maxMessageSize,
          },
          { accept, log, db, onOutcome },
        );
        return { res, firstRefusal };
      }
      const client = await imapClient(settings);
      client.on('error', () => {});
      try {
        await client.connect();
        await client.mailboxOpen(o.folder);
        const res = await imapPass(
          client,
          {
            settings,
            path: o.folder,
            origin,
            deleteOnServer: !!o.values.delete,
            moveOnSuccess: (o.values['move-on-success'] as string | undefined) ?? null,
            moveOnFailure: (o.values['move-on-failure'] as string | undefined) ?? null,
            link,
            maxSize: config.mail.maxMessageSize,
            batch: config.mail.batch,
          },
          { accept, log, db, onOutcome },
        );
        return { res, firstRefusal };
      } catch (err) {
        throw imapFailure(err, o.host);
      } finally {
        await client.logout().catch(() => client.close());
      }
    } finally {
      await intake.close();
    }
  } finally {
    await db.close();
  }
}

export const fetchCmd: Command = {
  name: 'fetch',
  summary: 'fetch once from an IMAP folder or a POP3 mailbox into the store (for cron)',
  usage: USAGE,
  async run(argv) {
    let o: ReturnType<typeof options>;
    let config: Config;
    try {
      o = options(argv);
      config = loadConfig(o.config);
      if (o.route && !config.routes.some((r) => r.name === o.route)) usage(`--route ${o.route}: no such route in the config`);
    } catch (e) {
      if (e instanceof ConfigError) {
        process.stderr.write(`${e.message}\n`);
        return 78;
      }
      process.stderr.write(`postroom fetch: ${(e as Error).message}\n\n${USAGE}\n`);
      return 64;
    }
    try {
      const { res, firstRefusal } = await fetchOnce(o, config);
      process.stderr.write(`postroom fetch: kept ${res.kept}, already kept ${res.duplicates}, refused ${res.refused}\n`);
      if (firstRefusal?.kind === 'refused') {
        process.stderr.write(`postroom fetch: ${toStderrLine(firstRefusal.error)}\n`);
        return toSysexit(firstRefusal.error);
      }
      return 0;
    } catch (err) {
      const e = asMailError(err);
      const line = e.code === 'INTERNAL' ? `4.3.0 ${(err as Error).message ?? String(err)}` : toStderrLine(e);
      process.stderr.write(`postroom fetch: ${line}\n`);
      return toSysexit(e);
    }
  },
};
