import { createReadStream } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../../config/load.js';
import { mailError, SYSEXITS, toStderrLine, toSysexit, type MailError } from '../../core/errors.js';
import { defaultIniFile, readDeliverIni } from '../../ingress/deliver-ini.js';
import { deliver, type DeliverTo } from '../../ingress/pipe.js';
import { openLocalIntake } from '../../assemble.js';
import { isMailbox } from '../../ingress/smtp-address.js';
import type { Command } from '../command.js';

const USAGE = `usage: postroom deliver [-m MAXSIZE] [-l LIST] [-f FILE|-] [-t server|message] [-c INI] [-i INSTANCE]
                        [--recipient ADDR] [--sender ADDR] [--config FILE] [--deadline SECONDS] [URL]

For MTAs (Postfix pipe(8), Exim pipe transport): reads one message from FILE or standard
input (default -), always to its end, and keeps it.
  URL given   POST it to that Postroom server's HTTP intake (URL/api/v1/inbound) with the
              instance's token from the INI file -c (default ./postroom-deliver.ini, or
              $INSTANCE_HOME/etc/gsconfig.ini when INSTANCE_HOME is set and that is absent):
                [config-INSTANCE]   webservice = NAME     (-i, default 'default'; without
                                                           this section NAME is INSTANCE)
                [webservice-NAME]   token = ...           (the server's API or intake token)
  no URL      write to the store on this host through the same intake door, with the config
              from --config, $POSTROOM_CONFIG or the defaults (a running server may share it).

  -m MIB        largest message in MiB (default 200); larger: 5.3.4
  -l LIST       the group: its address or numeric id (wins over --recipient)
  --recipient   the envelope recipient (Postfix \${original_recipient}); else X-Original-To
  --sender      the envelope sender (Postfix \${sender}); else Return-Path, else <>
                (with <>, a group checks membership on the From: address)
  -t server     post time is the arrival time (default); 'message': the Date: header
  --deadline S  give up with 4.4.7 after S seconds (default 900, under Postfix's
                command_time_limit of 1000 s)

Exit status (sysexits) and one line on stderr starting with the RFC 3463 code:
  0 kept | 75 transient, the MTA retries: 4.3.5 config (also a dataDir that cannot be
  created), 4.4.4 cannot connect, 4.4.5 busy, 4.5.0 undecodable answer or bad token, 4.5.2 URL
  without host, 4.3.x could not keep, 4.3.0 unexpected | 67 5.1.1 no such recipient |
  65 5.1.3 no recipient, 5.3.4 too large | 65 5.4.6 mail loop (too many Received: headers, or
  passed this Postroom too often) | 66 5.3.0 empty | 76 5.5.0 protocol error | 77 5.7.1 not
  allowed (e.g. not a member) | 64 5.1.7 --sender is not an address.
It never exits 1: any failure nobody foresaw is 75 with 4.3.0, or 0 if the message was kept.`;

/** Parse the arguments; a usage mistake is a configuration error (4.3.5): the MTA keeps the mail. */
function options(argv: string[]) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        m: { type: 'string', short: 'm', default: '200' },
        l: { type: 'string', short: 'l' },
        f: { type: 'string', short: 'f', default: '-' },
        t: { type: 'string', short: 't', default: 'server' },
        c: { type: 'string', short: 'c' },
        i: { type: 'string', short: 'i', default: 'default' },
        recipient: { type: 'string' },
        sender: { type: 'string' },
        config: { type: 'string' },
        deadline: { type: 'string', default: '900' },
      },
    });
  } catch (e) {
    throw mailError('CONFIG', `usage: ${(e as Error).message}`);
  }
  const { values: v, positionals } = parsed;
  if (positionals.length > 1) throw mailError('CONFIG', `usage: one URL at most (got ${positionals.length} arguments)`);
  const mib = Number(v.m);
  if (!(mib > 0)) throw mailError('CONFIG', `usage: -m takes a size in MiB, not '${v.m}'`);
  const deadline = Number(v.deadline);
  if (!(deadline > 0)) throw mailError('CONFIG', `usage: --deadline takes seconds, not '${v.deadline}'`);
  if (v.t !== 'server' && v.t !== 'message') throw mailError('CONFIG', `usage: -t takes 'server' or 'message', not '${v.t}'`);
  // The MTA hands its envelope sender over as it is; one that is no address (a quoting
  // mistake in master.cf, a sender the MTA should never have taken) is refused as a usage
  // error (EX_USAGE, which the MTA bounces) rather than kept under an address nobody can answer.
  if (v.sender && !isMailbox(v.sender)) {
    throw mailError('USAGE_BAD_SENDER', `--sender '${v.sender}' is not an address (RFC 5321 local@domain; '' for <>)`);
  }
  return { v, url: positionals[0], maxSize: Math.floor(mib * 1024 * 1024), deadlineMs: deadline * 1000, timeSource: v.t as 'server' | 'message' };
}

/**
 * From here on, whatever fails — an uncaught exception, an unhandled rejection, an error event
 * nobody listens to (a closed stdout: EPIPE) — ends the process with the pipe's contract, never
 * Node's exit 1 (or main's 70), which Postfix and Exim take as a bounce: 0 once the message is
 * kept (the MTA must not send it again, nor bounce what will be delivered), else 75 with a
 * 4.3.0 line, so the MTA keeps the mail and retries. The state after such an error is unknown,
 * so the process exits at once.
 */
function guardPipe(): { kept(id: string): void; dispose(): void } {
  let keptId: string | undefined;
  const fatal = (err: unknown) => {
    if (keptId) {
      process.exitCode = 0;
      process.exit(0);
    }
    const e = mailError('INTERNAL', `Internal error: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    try {
      process.stderr.write(`${toStderrLine(e)}\n`);
    } catch {
      // stderr gone too: the exit status alone still tells the MTA to defer.
    }
    process.exit(SYSEXITS.TEMPFAIL);
  };
  // In place of bin/postroom.js's early guard, which cannot know that a message was kept.
  process.removeAllListeners('uncaughtException');
  process.removeAllListeners('unhandledRejection');
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  // A stdout or stderr the MTA closed early must not turn the status line into a crash.
  const quiet = () => {};
  process.stdout.on('error', quiet);
  process.stderr.on('error', quiet);
  return {
    kept: (id) => (keptId = id),
    dispose() {
      process.off('uncaughtException', fatal);
      process.off('unhandledRejection', fatal);
    },
  };
}

/** Every failure of `run`, also one nobody foresaw, as the pipe's status: 0 if kept, else 75 4.3.0. */
async function guarded(run: (kept: (id: string) => void) => Promise<number>): Promise<number> {
  const guard = guardPipe();
  let keptId: string | undefined;
  try {
    return await run((id) => {
      keptId = id;
      guard.kept(id);
    });
  } catch (err) {
    if (keptId) return 0;
    return finish(SYSEXITS.TEMPFAIL, toStderrLine(mailError('INTERNAL', `Internal error: ${(err as Error)?.message ?? String(err)}`, { cause: err })));
  }
}

/** The exit code, after writing the status line to stderr. */
function finish(code: number, line: string): number {
  process.stderr.write(`${line}\n`);
  // Whatever a failed store or socket left open must not keep an MTA's pipe process alive.
  setTimeout(() => process.exit(code), 10_000).unref();
  return code;
}

export const deliverCmd: Command = {
  name: 'deliver',
  summary: 'MTA pipe command: keep one message from stdin (locally or via a server URL); sysexits + RFC 3463',
  usage: USAGE,
  run: (argv) => guarded((kept) => runDeliver(argv, kept)),
};

async function runDeliver(argv: string[], kept: (id: string) => void): Promise<number> {
  let o;
  let to: DeliverTo;
  try {
    o = options(argv);
    const iniFile = o.v.c !== undefined ? path.resolve(o.v.c) : defaultIniFile();
    const instance = o.v.i;
    if (o.url) to = { kind: 'http', url: o.url, token: () => readDeliverIni(iniFile, instance).token };
    else {
      const config = loadConfig(o.v.config);
      to = { kind: 'local', open: () => openLocalIntake(config) };
    }
  } catch (err) {
    const e: MailError | unknown = err instanceof ConfigError ? mailError('CONFIG', err.message.replace(/\n\s*/g, '; ')) : err;
    // Read the message to its end even so: the MTA is writing it to us.
    process.stdin.resume();
    return finish(toSysexit(e), toStderrLine(e));
  }
  let input;
  try {
    input = o.v.f === '-' ? process.stdin : createReadStream(o.v.f);
  } catch (err) {
    const e = mailError('CONFIG', `cannot read ${o.v.f}: ${(err as Error).message}`);
    return finish(toSysexit(e), toStderrLine(e));
  }
  const r = await deliver(
    input,
    { maxSize: o.maxSize, list: o.v.l, recipient: o.v.recipient, sender: o.v.sender, timeSource: o.timeSource, deadlineMs: o.deadlineMs, onKept: kept },
    to,
  );
  if (r.code === 0) {
    process.stdout.write(`${r.line}\n`);
    return 0;
  }
  return finish(r.code, r.line);
}
