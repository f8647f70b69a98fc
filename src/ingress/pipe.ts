import type { Readable } from 'node:stream';
import { mailError, MailError, toStderrLine, toSysexit } from '../core/errors.js';
import type { Envelope } from '../core/message.js';
import { firstAddress, headerValue, messageChunks, PipeSource, readHead, chooseRecipient } from './pipe-source.js';
import { intakeUrl, postMessage } from './pipe-http.js';
import type { Config } from '../config/schema.js';
import type { RecipientCheck } from '../core/message.js';
import type { Intake } from '../intake/accept.js';
import type { Db } from '../store/db.js';

/**
 * `postroom deliver`: an MTA's pipe transport hands one message on stdin; we keep it (in the
 * local store, or by POSTing it to a Postroom server's HTTP intake) and answer as pipe(8)
 * expects: exit 0 only once the message is kept, a sysexits code otherwise, and one stderr line
 * that starts with the RFC 3463 code (GroupServer's smtp2gs contract).
 */

export interface DeliverOptions {
  /** Largest message in bytes (`-m` MiB). */
  maxSize: number;
  /** `-l`: the group (its address, or its numeric id). */
  list?: string;
  /** `--recipient`: the envelope recipient (Postfix ${original_recipient}). */
  recipient?: string;
  /** `--sender`: the envelope sender (Postfix ${sender}); else Return-Path, else <>. */
  sender?: string;
  /** `-t`: post time from the Date: header (`message`) or the arrival time (`server`). */
  timeSource: 'server' | 'message';
  /** Give up (exit 75) after this many ms, before the MTA's own command time limit kills us. */
  deadlineMs: number;
  /** Told the message id as soon as the message is kept, before anything else can fail. */
  onKept?: (id: string) => void;
}

/** The intake door of a store on this host, opened for one run (openLocalIntake in assemble.ts). */
export interface LocalIntake {
  intake: Pick<Intake, 'accept'>;
  recipientCheck: RecipientCheck;
  /** A group id (`-l 12345`) as its address. */
  resolveList(list: string): Promise<string>;
  config: Config;
  /** The store it keeps into (`postroom import` records flags and its place there). */
  db: Db;
  close(): Promise<void>;
}

/** Where the message goes: a server's HTTP intake, or the store on this host. */
export type DeliverTo =
  | { kind: 'http'; url: string; token: () => string }
  | { kind: 'local'; open: () => Promise<LocalIntake> };

/** What the command prints and exits with. */
export interface DeliverResult {
  code: number;
  /** The stderr line (RFC 3463 code first); on success a short note with the message id. */
  line: string;
  id?: string;
}

/** Deliver one message read from `input`; never throws. */
export async function deliver(input: Readable, opts: DeliverOptions, to: DeliverTo): Promise<DeliverResult> {
  const src = new PipeSource(input);
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ac.abort();
      reject(mailError('DEADLINE', `Gave up after ${Math.round(opts.deadlineMs / 1000)} s; the MTA retries later`));
    }, opts.deadlineMs);
  });
  let local: LocalIntake | undefined;
  const work = (async () => {
    const head = await readHead(src);
    // Nothing at all on stdin is an empty message (5.3.0), whatever else is missing: that is
    // what went wrong, not the recipient its (absent) header would have named.
    if (src.bytes === 0) throw mailError('EMPTY_MESSAGE');
    let rcpt = chooseRecipient(opts, head.headers);
    const mailFrom = opts.sender ?? firstAddress(headerValue(head.headers, 'return-path')) ?? '';
    // With the null sender, a group decides membership by the From: address (as smtp2gs does).
    const headerFrom = mailFrom ? undefined : firstAddress(headerValue(head.headers, 'from'));
    const body = messageChunks(src, head, opts.maxSize);
    if (to.kind === 'http') {
      const url = intakeUrl(to.url);
      url.searchParams.append(/@/.test(rcpt) ? 'recipient' : 'list', rcpt);
      url.searchParams.set('sender', mailFrom);
      if (headerFrom) url.searchParams.set('from', headerFrom);
      if (opts.timeSource === 'message') url.searchParams.set('time', 'message');
      const posted = await postMessage(url, to.token(), body, ac.signal);
      opts.onKept?.(posted.id);
      return posted;
    }
    local = await to.open();
    if (ac.signal.aborted) throw mailError('DEADLINE');
    if (rcpt === opts.list) rcpt = await local.resolveList(rcpt);
    const env: Envelope = { mailFrom, rcptTo: [rcpt], ingress: 'pipe', receivedAt: new Date(), timeSource: opts.timeSource };
    const verdict = await local.recipientCheck(rcpt, { ingress: 'pipe', mailFrom, headerFrom, accepted: [], trusted: true });
    const { smtp } = local.config;
    const stored = await local.intake.accept(env, body, {
      maxSize: opts.maxSize,
      requireMessageId: smtp.requireMessageId || !!verdict?.requireMessageId,
      trace: smtp.traceHeader,
    });
    opts.onKept?.(stored.id);
    return { id: stored.id };
  })();
  work.catch(() => {});
  try {
    const { id } = await Promise.race([work, deadline]);
    await Promise.race([src.drain(), deadline]);
    return { code: 0, line: `2.0.0 Ok: kept as ${id}`, id };
  } catch (err) {
    const e = unexpected(err);
    if (e.code === 'DEADLINE') src.destroy();
    else await Promise.race([src.drain(), deadline]).catch(() => src.destroy());
    return { code: toSysexit(e), line: toStderrLine(e) };
  } finally {
    clearTimeout(timer);
    // Closing waits for a commit in flight; past the deadline we do not wait for it.
    const closing = local?.close().catch(() => {});
    if (closing) await Promise.race([closing, new Promise((r) => setTimeout(r, 5_000).unref())]);
  }
}

/** Anything not from our taxonomy is 4.3.0: the MTA defers, nothing bounces by accident. */
function unexpected(err: unknown): MailError {
  if (err instanceof MailError) return err;
  return mailError('INTERNAL', `Internal error: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}
