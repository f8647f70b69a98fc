import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { asMailError, mailError, MailError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Envelope, StoredMessage } from '../core/message.js';
import type { BlobStore, StagedBlob } from '../store/ports.js';
import { ContentFingerprint } from '../mime/content-fingerprint.js';
import { HeaderSniffer } from '../mime/header-sniff.js';
import { transact, type Db } from '../store/db.js';
import { insertMessages, newMessageRow } from '../store/messages.js';
import type { MessagesTable } from '../store/schema.js';
import type { Metrics } from '../telemetry/metrics.js';
import { loopOf, type LoopLimits } from './loop.js';
import { receivedHeader } from '../mime/trace.js';
import type { AuthVerdict } from '../core/auth.js';
import { authResultsHeader, trustedResults } from '../mime/auth-results.js';
import type { Authenticator, SessionFacts } from './authenticate.js';
import { feedVerifier } from './auth-feed.js';

/** Per-call choices an ingress makes. */
export interface AcceptOptions {
  /** Bytes; past it the message is refused with 5.3.4 and nothing is kept. */
  maxSize?: number;
  /** Refuse a message without Message-ID (5.6.0). */
  requireMessageId?: boolean;
  /** Record a Received: trace header for this message. */
  trace?: boolean;
  /** Where identical bytes without a Message-ID are one message (a fetched folder's id); see dedupKey. */
  dedupScope?: string;
  /**
   * Kept by a process that parses nothing itself (a `postroom fetch` one-shot): recorded on the
   * row so that a running server's parse poll takes the message at once (ParseAndStore.poll).
   */
  handoff?: string;
  /**
   * false: keep the message and never route it (status `kept`; the planner routes only
   * `received`). Set on the row it is committed with, so no parse poll can route it first.
   */
  route?: boolean;
  /** Verify SPF, DKIM, ARC and DMARC (the SMTP ingress, with what its session knew); unset: not verified. */
  authenticate?: SessionFacts;
  /** Refuse the message at the end of the data after its verdict (route options); unset: never. */
  authPolicy?: (verdict: AuthVerdict, env: Envelope) => Promise<MailError | undefined>;
}

/** The one door into Postroom: every ingress hands its envelope and raw stream here. */
export type Accept = (
  env: Envelope,
  raw: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  opts?: AcceptOptions,
) => Promise<StoredMessage>;

interface Pending {
  staged: StagedBlob;
  row: MessagesTable;
  resolve(m: StoredMessage): void;
  reject(e: unknown): void;
}

export interface IntakeDeps {
  db: Db;
  blobs: BlobStore;
  log: Logger;
  metrics: Metrics;
  /** Our host name for the trace header. */
  hostname: string;
  /** Largest header block read before intake; the parser enforces the same limit. */
  headerLimit?: number;
  /** Extra wait to gather a larger batch into one commit; 0 takes whatever is waiting. */
  commitWindowMs?: number;
  /** Mail loops refused at the end of the data (every ingress); unset: no check. */
  loop?: LoopLimits;
  /** Postmaster recipients (see postmasterOf) and the address their mail is kept for (smtp.postmaster); unset: kept as addressed. */
  postmaster?: { is(rcpt: string): boolean; alias: string };
  /** Sender authentication (auth.enabled); unset: messages carry no verdict. */
  auth?: {
    /** auth.enabled: verify what SMTP takes; unset: SMTP mail carries no verdict. */
    verify?: Authenticator;
    /** authserv-ids whose Authentication-Results are believed for mail we did not take by SMTP (auth.trustedHosts). */
    trustedHosts: readonly string[];
  };
}

const MAX_BATCH = 256;

/**
 * Intake keeps a message and only then returns: the raw bytes are fsynced and renamed into
 * the blob store, and the row committed. Concurrent accepts share one directory fsync and one
 * database commit (group commit): while one batch commits, the next gathers.
 */
export class Intake extends EventEmitter<{ stored: [StoredMessage, Buffer | undefined, Envelope] }> {
  private queue: Pending[] = [];
  private running = false;
  private closed = false;

  constructor(private readonly deps: IntakeDeps) {
    super();
  }

  /** Keep a message; resolves once it is durable. Throws MailError (transient when keeping failed). */
  accept: Accept = async (env, raw, opts = {}) => {
    const ingress = env.ingress;
    if (this.closed) throw mailError('SHUTTING_DOWN');
    const sniffer = new HeaderSniffer(this.deps.headerLimit);
    const fingerprint = new ContentFingerprint(this.deps.headerLimit);
    // Verified while the bytes are kept: the verdict is ready (or nearly) when the last byte is.
    const verify = this.deps.auth?.verify;
    const feed = opts.authenticate && verify ? feedVerifier(verify, opts.authenticate, sniffer) : undefined;
    const tapped = (async function* () {
      for await (const chunk of raw) {
        sniffer.push(chunk);
        fingerprint.push(chunk);
        if (feed) await feed.push(chunk);
        yield chunk;
      }
      feed?.end();
    })();
    let staged: StagedBlob;
    try {
      staged = await this.deps.blobs.stage(tapped, { maxSize: opts.maxSize });
    } catch (err) {
      feed?.abort();
      throw this.failed(ingress, err, 'stage');
    }
    try {
      if (staged.size === 0) throw mailError('EMPTY_MESSAGE');
      const head = sniffer.result();
      if (opts.requireMessageId && !head.messageId) throw mailError('MESSAGE_ID_REQUIRED');
      const loop = this.deps.loop && loopOf(head.lines, this.deps.loop);
      if (loop) throw loop;
      const pm = this.deps.postmaster;
      // Postfix's virtual alias: the envelope recipient becomes the configured address, which
      // the routes then take (RFC 5321 §4.5.1 only asks that postmaster mail be accepted).
      if (pm && env.rcptTo.some(pm.is)) env = { ...env, rcptTo: [...new Set(env.rcptTo.map((r) => (pm.is(r) ? pm.alias : r)))] };
      // Mail we did not take by SMTP ourselves: a trusted upstream's verdict, if it wrote one.
      const verdict = feed ? await feed.verdict : !opts.authenticate && this.deps.auth ? trustedResults(head.lines, this.deps.auth.trustedHosts) : undefined;
      const refusal = verdict && (await opts.authPolicy?.(verdict, env));
      if (refusal) throw refusal;
      const id = newId();
      const received = opts.trace === false ? null : receivedHeader(env, id, this.deps.hostname, this.deps.loop?.installationId);
      // Our verdict travels with the trace: forwards and relays serve it above the Received: line (RFC 8601 §5).
      const trace = received && verdict?.source === 'smtp' ? authResultsHeader(verdict) + received : received;
      const row = newMessageRow(id, env, staged, { ...head, contentSha256: fingerprint.digest() }, trace, opts.dedupScope);
      if (verdict) row.auth = JSON.stringify(verdict);
      if (opts.handoff) row.handoff = opts.handoff;
      if (opts.route === false) row.status = 'kept';
      const stored = await new Promise<StoredMessage>((resolve, reject) => {
        this.queue.push({ staged, row, resolve, reject });
        if (!this.running) void this.drain();
      });
      this.deps.metrics.messages.inc({ ingress, outcome: stored.duplicate ? 'duplicate' : 'accepted' });
      if (!stored.duplicate) {
        this.deps.metrics.bytes.inc({ ingress }, stored.size);
        // With the bytes when they are in memory (small messages): the parser need not read them back.
        this.emit('stored', stored, staged.data, env);
      }
      return stored;
    } catch (err) {
      feed?.abort();
      await this.deps.blobs.discard(staged);
      throw this.failed(ingress, err, 'commit');
    }
  };

  private failed(ingress: string, err: unknown, stage: string): MailError {
    const e = err instanceof MailError ? err : asMailError(err);
    if (!(err instanceof MailError) && e.code === 'INTERNAL') {
      // Anything unexpected while keeping is a failure to keep: transient, never a bounce.
      const wrapped = mailError('STORE_FAILED', undefined, { cause: err });
      this.deps.log.error({ err, stage }, 'intake could not keep a message');
      this.deps.metrics.messages.inc({ ingress, outcome: 'failed' });
      return wrapped;
    }
    this.deps.metrics.messages.inc({ ingress, outcome: e.transient ? 'failed' : 'rejected' });
    if (e.code === 'STORE_FULL') this.deps.log.error({ err, stage }, 'storage full: refusing mail with 452 4.3.1');
    // The reply says only "object storage unreachable"; the cause names endpoint, bucket and the error.
    if (e.code === 'OBJECT_STORE_FAILED') this.deps.log.error({ err: e.cause ?? err, stage }, 'object storage failed: refusing mail with 451 4.3.0');
    return e;
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length) {
        if (this.deps.commitWindowMs) await new Promise((r) => setTimeout(r, this.deps.commitWindowMs));
        const batch = this.queue.splice(0, MAX_BATCH);
        try {
          // Blobs first: a committed row must never point at bytes that are not durable. Files
          // are renamed and their directories fsynced before the transaction (see settle).
          const inTransaction = await this.deps.blobs.settle(batch.map((p) => p.staged));
          const stored = await transact(this.deps.db, async (trx) => {
            await this.deps.blobs.commit(inTransaction, trx);
            return insertMessages(
              trx,
              batch.map((p) => p.row),
            );
          });
          this.deps.metrics.commitBatch.observe(batch.length);
          batch.forEach((p, i) => p.resolve(stored[i]));
        } catch (err) {
          batch.forEach((p) => p.reject(err));
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Refuse new mail and wait for batches in flight to finish. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running || this.queue.length) await new Promise((r) => setTimeout(r, 5));
  }
}
