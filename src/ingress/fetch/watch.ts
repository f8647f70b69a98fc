import { setTimeout as sleep } from 'node:timers/promises';
import type { ImapFlow } from 'imapflow';
import { mailError, type MailError } from '../../core/errors.js';
import { DEFAULT_AFTER_READ_TIMEOUT, effectiveOptions, type MailConfig, type MailOptions } from '../../domain/accounts/config.js';
import type { SecretBox } from '../../domain/accounts/secret-box.js';
import { builtInProtocol, loadFolderJob, routingRecipient, type FolderJob } from '../../domain/accounts/store.js';
import type { Accept } from '../../intake/accept.js';
import type { Db } from '../../store/db.js';
import type { Logger } from '../../telemetry/log.js';
import type { Metrics } from '../../telemetry/metrics.js';
import { imapPass, type ImapJob } from './imap.js';
import { imapFailure } from '../../net/remote-answer.js';
import { imapClient } from './imap-session.js';
import type { KeepOutcome } from './keep.js';
import { pop3Pass, type Pop3Job } from './pop3.js';
import { recordFailure, recordOk } from './state.js';

/** What a folder watcher needs. */
export interface WatchDeps {
  db: Db;
  box: SecretBox;
  accept: Accept;
  log: Logger;
  metrics: Metrics;
  config: MailConfig;
}

/** How long to wait before reconnect attempt `n` (1, 2, 4 … s, capped; ±20 % jitter so many folders do not reconnect in step). */
export function reconnectDelay(n: number, maxMs: number): number {
  const base = Math.min(maxMs, 1000 * 2 ** Math.max(0, n - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/** The options in force for a job: profile ← account ← folder. */
export function jobOptions(job: FolderJob): MailOptions {
  return effectiveOptions(job.profile.options, job.account.options, job.folder.options);
}

function labels(job: FolderJob) {
  return { account: job.account.name, folder: job.folder.path };
}

function countOutcome(deps: WatchDeps, job: FolderJob, o: KeepOutcome): void {
  const outcome = o.kind === 'kept' ? (o.message.duplicate ? 'duplicate' : 'kept') : o.kind;
  deps.metrics.fetchMessages.inc({ protocol: job.profile.protocol, ...labels(job), outcome });
}

/** The IMAP job of a folder. */
export function imapJobOf(job: FolderJob, config: MailConfig): ImapJob {
  const opts = jobOptions(job);
  return {
    settings: {
      host: job.profile.host,
      port: job.profile.port,
      tls: job.profile.tls,
      username: job.account.username,
      password: job.password,
      tlsVerify: opts.tls_verify ?? true,
    },
    path: job.folder.path,
    origin: { ingress: 'imap', folder: job.folder.id, recipient: routingRecipient(job), host: job.profile.host, username: job.account.username },
    deleteOnServer: job.folder.deleteOnServer,
    moveOnSuccess: job.folder.moveOnSuccess,
    moveOnFailure: job.folder.moveOnFailure,
    cursor: { folderId: job.folder.id, accountId: job.account.id, uidValidity: job.folder.uidValidity, lastUid: job.folder.lastUid },
    link: { account: job.account.id, folder: job.folder.id, route: job.folder.route },
    maxSize: config.maxMessageSize,
    batch: config.batch,
  };
}

/** The POP3 job of a folder (POP3 has one: INBOX). */
export function pop3JobOf(job: FolderJob, config: MailConfig): Pop3Job {
  const opts = jobOptions(job);
  return {
    settings: {
      host: job.profile.host,
      port: job.profile.port,
      tls: job.profile.tls,
      username: job.account.username,
      password: job.password,
      tlsVerify: opts.tls_verify ?? true,
      apop: opts.apop ?? false,
    },
    origin: { ingress: 'pop3', folder: job.folder.id, recipient: routingRecipient(job), host: job.profile.host, username: job.account.username },
    deleteOnServer: job.folder.deleteOnServer,
    deleteUnprocessed: opts.delete_unprocessed ?? false,
    seen: { folderId: job.folder.id },
    link: { account: job.account.id, folder: job.folder.id, route: job.folder.route },
    maxSize: config.maxMessageSize,
  };
}

/** Wait for new mail while in IDLE (RFC 2177): an EXISTS, the connection closing, `maxMs`, or stop. */
function idleUntilNews(client: ImapFlow, dirty: () => boolean, signal: AbortSignal, maxMs: number): Promise<void> {
  if (dirty() || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off('exists', done);
      client.off('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, maxMs);
    client.on('exists', done);
    client.on('close', done);
    signal.addEventListener('abort', done);
    // The next command (the pass's SEARCH) ends the IDLE with DONE; imapflow sends it first.
    client.idle().catch(() => done());
  });
}

/**
 * How long a healthy session may go without recording a good poll: a third of `staleAfter`
 * (so two can be missed before the folder reads stale), never more than 5 minutes, never less
 * than a second. RFC 2177 asks only that IDLE be re-issued within 29 minutes; a fixed 5-minute
 * IDLE made every healthy folder look stale under a shorter `mail.staleAfter`.
 */
export function heartbeatMs(staleAfter: number): number {
  return Math.min(5 * 60_000, Math.max(1_000, Math.floor(staleAfter / 3)));
}

/** One IMAP session: connect, select, then pass → IDLE (or sleep) → pass … until stopped or failed. */
async function imapSession(deps: WatchDeps, job: FolderJob, signal: AbortSignal, onOk: () => Promise<void>): Promise<void> {
  const ij = imapJobOf(job, deps.config);
  const opts = jobOptions(job);
  const client = await imapClient(ij.settings);
  // Stopped while imapflow was loading: its abort event has passed, so do not connect at all.
  if (signal.aborted) return;
  let lastError: Error | undefined;
  client.on('error', (err: Error) => (lastError = err));
  let news = false;
  client.on('exists', () => (news = true));
  const stop = () => client.close();
  signal.addEventListener('abort', stop);
  try {
    await client.connect();
    await client.mailboxOpen(ij.path);
    const useIdle = opts.idle !== false && client.capabilities.has('IDLE');
    const interval = opts.after_read_timeout ?? DEFAULT_AFTER_READ_TIMEOUT;
    const heartbeat = heartbeatMs(deps.config.staleAfter);
    while (!signal.aborted) {
      news = false;
      await imapPass(client, ij, { accept: deps.accept, log: deps.log, db: deps.db, onOutcome: (o) => countOutcome(deps, job, o) });
      await onOk();
      if (useIdle) await idleUntilNews(client, () => news, signal, heartbeat);
      else {
        // Between polls a NOOP every heartbeat shows the server still answers (and may bring an
        // EXISTS): a poll interval longer than staleAfter is not a stale folder.
        for (let waited = 0; waited < interval && !news && !signal.aborted; ) {
          const step = Math.min(heartbeat, interval - waited);
          await sleep(step, undefined, { signal }).catch(() => {});
          waited += step;
          if (signal.aborted) break;
          await client.noop();
          if (waited < interval && client.usable) await onOk();
        }
      }
      if (!client.usable && !signal.aborted) throw lastError ?? new Error('connection closed by the server');
    }
  } finally {
    signal.removeEventListener('abort', stop);
    if (client.usable) await client.logout().catch(() => client.close());
    else client.close();
  }
}

/** POP3 polls: connect, take what is new, quit; every `after_read_timeout`. */
async function pop3Session(deps: WatchDeps, job: FolderJob, signal: AbortSignal, onOk: () => Promise<void>): Promise<void> {
  const pj = pop3JobOf(job, deps.config);
  const interval = jobOptions(job).after_read_timeout ?? DEFAULT_AFTER_READ_TIMEOUT;
  while (!signal.aborted) {
    await pop3Pass(pj, { accept: deps.accept, log: deps.log, db: deps.db, signal, onOutcome: (o) => countOutcome(deps, job, o) });
    await onOk();
    await sleep(interval, undefined, { signal }).catch(() => {});
  }
}

/**
 * Watch one folder until `signal` aborts (lease lost, folder disabled, shutdown). Failures are
 * recorded on the folder (health) and retried after a growing delay; nothing here throws, so
 * a dead server or a wrong password never takes the process down.
 */
export async function watchFolder(deps: WatchDeps, folderId: string, signal: AbortSignal): Promise<void> {
  let failures = 0;
  while (!signal.aborted) {
    let job: FolderJob | undefined;
    try {
      job = await loadFolderJob(deps.db, deps.box, folderId);
      if (!job || !job.folder.enabled) return;
      const j = job;
      const onOk = async () => {
        failures = 0;
        await recordOk(deps.db, folderId);
        deps.metrics.fetchPolls.inc({ ...labels(j), outcome: 'ok' });
        deps.metrics.fetchFailures.set(labels(j), 0);
        deps.metrics.fetchLastSuccess.set(labels(j), Date.now() / 1000);
      };
      // An operator's own protocol (mail.model) has no client here: not a POP3 or IMAP guess.
      if (!builtInProtocol(job.profile.protocol)) throw mailError('MISCONFIGURED', `protocol ${job.profile.protocol} is not one Postroom fetches through (imap, pop3)`);
      if (job.profile.protocol === 'pop3') await pop3Session(deps, job, signal, onOk);
      else await imapSession(deps, job, signal, onOk);
    } catch (err) {
      if (signal.aborted) break;
      const e: MailError = imapFailure(err, job?.profile.host ?? 'mail server');
      failures = await recordFailure(deps.db, folderId, `${e.status} ${e.message}`).catch((recordErr: unknown) => {
        // The health API cannot show this failure then: the log must.
        deps.log.error({ folder: folderId, err: recordErr }, 'could not record the mail folder failure in its health');
        return failures + 1;
      });
      if (job) {
        deps.metrics.fetchPolls.inc({ ...labels(job), outcome: 'error' });
        deps.metrics.fetchFailures.set(labels(job), failures);
      }
      const wait = reconnectDelay(failures, deps.config.reconnectMax);
      deps.log.warn({ folder: folderId, path: job?.folder.path, err: e.message, status: e.status, failures, retryInMs: wait }, 'mail folder poll failed; reconnecting later');
      await sleep(wait, undefined, { signal }).catch(() => {});
    }
  }
}
