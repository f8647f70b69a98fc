import { intakeAuth } from '../../intake/auth-setup.js';
import os from 'node:os';
import { ConfigError, loadConfig } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { asMailError, mailError, toStderrLine, toSysexit } from '../../core/errors.js';
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
import { fetchOptions, type FetchOpts } from './fetch-options.js';

const USAGE = `usage: postroom fetch imap [--host H] [--port P] [--ssl | --starttls] --username U --password W
                          [--folder INBOX] [--move-on-success FOLDER | --keep] [--move-on-failure FOLDER]
                          [--route NAME | --recipient ADDR | WORK-PACKAGE OPTIONS] [--no-verify] [--config FILE]
       postroom fetch pop3 [--host H] [--port P] [--ssl | --starttls] --username U --password W
                          [--apop] [--delete-unprocessed] [--keep]
                          [--route NAME | --recipient ADDR | WORK-PACKAGE OPTIONS] [--no-verify] [--config FILE]
       postroom fetch imap host=H port=993 ssl=true username=U password=W allow_override=type,project project=P

One pass over a mailbox, for cron, with the options of the Redmine/OpenProject mail handlers:
as --flags or as their rake tasks write them (key=value, ssl=1|true; move_on_success is
--move-on-success). Every message is kept in the configured store first; only then is it
moved, flagged or deleted on the server. A running 'postroom serve' on the same store parses,
routes and delivers it within its parse.pollInterval (2 s by default); otherwise the next one
started does.

  imap   takes the messages not \\Seen in --folder (default INBOX); kept ones are moved to
         --move-on-success, else deleted (as the original; --keep flags them \\Seen instead).
         Messages refused for good (too large, empty) are moved to --move-on-failure, else
         flagged \\Seen. (--delete, the old way to ask for deletion, is still accepted.)
  pop3   takes every message; kept ones are deleted (--keep leaves them; a later run then keeps
         nothing twice). Refused ones stay, unless --delete-unprocessed. --apop logs in with
         APOP (RFC 1939 section 7).
  --host H           default 127.0.0.1 (as the original)
  --recipient ADDR   the envelope recipient routes match (default: the user name, with
                     @HOST added if it has no @)
  --route NAME       give the mail to that configured route's targets instead
  --ssl              TLS from the first byte (default ports 993 / 995); --starttls upgrades
                     first (required); neither: cleartext (143 / 110)

Work-package options (make each mail a work package, or a journal entry of the one it
answers, without a configured route; see docs/tracker.md):
  --project P  --tracker T (or --type)  --category C  --priority P  --status S
  --allow-override LIST   attributes the mail may set although given above: project, tracker,
                          type, category, priority, status, assignee (assigned_to), version,
                          start_date, due_date, done_ratio, or all
  --no-permission-check   take mail from senders who are no tracker user (Anonymous) or no member
  --unknown-user ignore|accept   ignore refuses unknown senders (the default); accept files them
                          as Anonymous (= --no-permission-check). create is not supported.
  --no-notification       accepted: this command sends no notifications

Exit status: 0 every message fetched was kept (or there were none) | 65 a message was refused
(too large, empty) | 75 network error or the store could not keep a message (try again) |
77 login refused | 67 no such folder | 64 usage | 78 bad config. One line on stderr says why.`;

/** Fetch once with the store of `config`; resolves with what happened. Throws MailError on login/network failure. */
async function fetchOnce(o: FetchOpts, config: Config): Promise<{ res: PassResult; firstRefusal?: KeepOutcome }> {
  const log = createLogger('silent');
  const db = openDb(config.store.database, config.dataDir, { poolSize: 2, statementTimeout: config.store.statementTimeout });
  try {
    await migrate(db);
    const blobs = openBlobStore(config, db);
    const intake = new Intake({ db, blobs, log, metrics: createMetrics(), hostname: config.smtp.hostname ?? os.hostname(), headerLimit: config.parse.maxHeaderSize, auth: intakeAuth({ ...config.auth, enabled: false }, config.smtp.hostname ?? os.hostname()) });
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
    const link = { account: `cli:${o.username}@${o.host}`, folder: null, route: o.route, deliver: o.deliver };
    const settings = { host: o.host, port: o.port, tls: o.tls, username: o.username, password: o.password, tlsVerify: o.tlsVerify };
    try {
      if (o.protocol === 'pop3') {
        const res = await pop3Pass(
          {
            settings: { ...settings, apop: o.apop },
            origin,
            deleteOnServer: !o.keep,
            deleteUnprocessed: o.deleteUnprocessed,
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
            deleteOnServer: o.onSuccess === 'delete',
            moveOnSuccess: typeof o.onSuccess === 'object' ? o.onSuccess.move : null,
            moveOnFailure: o.moveOnFailure,
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
    let o: FetchOpts;
    let config: Config;
    try {
      o = fetchOptions(argv);
      config = loadConfig(o.config);
      if (o.route && !config.routes.some((r) => r.name === o.route)) throw mailError('INVALID_REQUEST', `--route ${o.route}: no such route in the config`);
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
