import { EventEmitter } from 'node:events';
import { idFloor } from '../core/ids.js';
import type { BlobStore, StagedBlob } from '../store/ports.js';
import type { Db } from '../store/db.js';
import type { StoredMessage } from '../core/message.js';
import { getMessage, listUnparsed, saveParsed, writeParsed, writeParsedMany, type ParsedRows } from '../store/messages.js';
import { batchedWrite } from '../store/write-batch.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import { parseStored, rawResult, type ParseLimits, type ParseResult } from './parse.js';
import { ParseThread } from './parse-thread.js';

export interface ParseWorkerDeps {
  db: Db;
  blobs: BlobStore;
  log: Logger;
  metrics: Metrics;
  config: ParseLimits & { workers: number; thread: boolean };
  /**
   * Every so often, look for messages another process kept (`postroom deliver` writing to this
   * store): they never pass through this process's intake, so nothing enqueues them. 0: never.
   */
  pollInterval?: number;
}

// A pipe process stamps the id when its bytes are staged and commits moments later; ten
// minutes of look-back covers any commit that lands before `postroom deliver` gives up.
const POLL_WINDOW = 10 * 60_000;

// Mail another ingress kept and nobody parsed after this long is taken by whoever polls.
const FOREIGN_GRACE = 60_000;

/** How many unparsed ids one sweep of the store reads at a time. */
const SWEEP_BATCH = 500;

/**
 * Messages of at most this size that intake hands over are parsed in a lane of their own,
 * SMALL_LANE at a time, beside the `workers` slots. A small parse costs little memory or CPU
 * but takes many turns of the event loop (stream hops, store round trips): with two slots, a
 * loaded process parsed fewer small messages a second than arrived, and the queue grew.
 * With `config.thread` they, and larger ones up to THREAD_PARSE_MAX, are parsed on a worker
 * thread (ParseThread) and only their save runs on the loop.
 */
export const SMALL_MESSAGE = 256 * 1024;
const SMALL_LANE = 16;

/**
 * Messages up to this size are parsed on the thread (config.parse.thread), in memory there:
 * a 1 MiB text body cost ~10 ms of the event loop to parse in-process, a stall for every SMTP
 * session, while handing it over is a copy. Larger ones stream from the store here, so a
 * 200 MiB message is never held whole; at most `workers` + SMALL_LANE parse at once either way.
 */
export const THREAD_PARSE_MAX = 4 * 1024 * 1024;

/** Raw bytes of queued messages kept in memory for the parse thread, at most (the rest are read back). */
const HELD_RAW_BYTES = 32 * 1024 * 1024;

/** What a parse just recorded, for whoever acts on it next (the planner), so it need not read it back. */
export interface ParsedNow {
  /** The message as the parse read it (before the save). */
  message: StoredMessage;
  /** What the save wrote. */
  saved: ParsedRows;
}

/**
 * Parses kept messages after the ack, from the stored blob, `config.workers` at a time (and
 * small ones beside them, see SMALL_MESSAGE). A message that cannot be parsed becomes status
 * `raw` with the reason; nothing here throws back to intake, and nothing here can crash the
 * process.
 */
export class ParseAndStore extends EventEmitter<{ parsed: [string, ParsedNow] }> {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  /** Messages intake handed over with their row: no need to read it again. */
  private readonly known = new Map<string, StoredMessage>();
  /** And their raw bytes, when intake had them in memory (small messages), for the thread. */
  private readonly raws = new Map<string, Uint8Array>();
  private rawBytes = 0;
  /** Results waiting to be saved together (saveSoon). */
  private saving: { msg: StoredMessage; result: ParseResult; resolve(): void; reject(err: unknown): void }[] = [];
  /** Where messages up to THREAD_PARSE_MAX are parsed (config.parse.thread); undefined: in-process. */
  private thread: ParseThread | undefined;
  /** Messages being parsed (and saved). */
  private running = 0;
  /** Of them, in the small lane (the rest hold one of `config.workers` slots). */
  private small = 0;
  private stopped = false;
  private sweeping: Promise<void> | undefined;
  private waiters: (() => void)[] = [];
  private drainWaiters: (() => void)[] = [];
  private pollTimer: NodeJS.Timeout | undefined;
  private polling = false;
  /** Parsed while a poll's query ran: its answer may be older than the parse. */
  private parsedDuringPoll: Set<string> | undefined;
  /** Failed on a store error: retried at the next start, not at every poll. */
  private readonly failed = new Set<string>();

  constructor(private readonly deps: ParseWorkerDeps) {
    super();
  }

  /**
   * Queue messages kept but not parsed (e.g. before a crash). The first batch is queued before
   * this resolves; the rest follow in the background, batch by batch, as the queue drains.
   */
  async start(): Promise<void> {
    this.stopped = false;
    if (this.deps.config.thread) this.thread ??= new ParseThread(this.deps.config, this.deps.log);
    if (this.deps.pollInterval) {
      this.pollTimer = setInterval(() => void this.poll(), this.deps.pollInterval);
      this.pollTimer.unref();
    }
    const first = await listUnparsed(this.deps.db.kysely, SWEEP_BATCH);
    const seen = new Set<string>();
    for (const id of first) {
      seen.add(id);
      this.enqueue(id);
    }
    if (first.length < SWEEP_BATCH) return;
    this.sweeping = this.sweep(seen)
      .catch((err: unknown) => this.deps.log.error({ msg: 'parse sweep failed', err: String(err) }))
      .finally(() => {
        this.sweeping = undefined;
        this.settle();
      });
  }

  private async sweep(seen: Set<string>): Promise<void> {
    for (;;) {
      await this.drained();
      if (this.stopped) return;
      // Parsed rows drop out of listUnparsed; one that failed on a store error stays, so stop
      // at a batch with nothing new rather than spin on it (the next start retries it).
      const ids = await listUnparsed(this.deps.db.kysely, SWEEP_BATCH);
      const fresh = ids.filter((id) => !seen.has(id));
      if (!fresh.length) return;
      for (const id of fresh) {
        seen.add(id);
        this.enqueue(id);
      }
    }
  }

  /**
   * Queue unparsed messages kept by other processes in the last few minutes: `postroom deliver`
   * (ingress `pipe`) and `postroom fetch` one-shots (marked `handoff`: no parser of their own)
   * at once; any other ingress once it has waited FOREIGN_GRACE, which covers a node that died
   * before parsing what it kept. SMTP, HTTP and scheduled fetches are parsed by the node that
   * took them (its intake enqueues them), so they are not touched while that is still likely;
   * parsing one twice would be harmless (parts are replaced, deliveries are keyed). The id range
   * keeps the query to the recent end of the primary key however large the table grows.
   */
  async poll(): Promise<void> {
    if (this.polling || this.stopped) return;
    this.polling = true;
    this.parsedDuringPoll = new Set();
    try {
      const rows = await this.deps.db.kysely
        .selectFrom('messages')
        .select('id')
        .where('id', '>=', idFloor(Date.now() - POLL_WINDOW))
        .where((eb) =>
          eb.or([eb('ingress', '=', 'pipe'), eb('handoff', 'is not', null), eb('id', '<', idFloor(Date.now() - FOREIGN_GRACE))]),
        )
        .where('parsed_at', 'is', null)
        .orderBy('id')
        .limit(SWEEP_BATCH)
        .execute();
      for (const { id } of rows) if (!this.parsedDuringPoll.has(id) && !this.failed.has(id)) this.enqueue(id);
    } catch (err) {
      this.deps.log.warn({ msg: 'parse poll failed', err: String(err) });
    } finally {
      this.parsedDuringPoll = undefined;
      this.polling = false;
    }
  }

  /** Resolves when the queue is empty and no parse is running (the sweep aside). */
  private drained(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Parse this message soon (called when intake has kept it, with the message it kept and, if small, its bytes). */
  enqueue(id: string, kept?: StoredMessage, raw?: Uint8Array): void {
    if (this.stopped || this.queued.has(id)) return;
    if (kept) this.known.set(id, kept);
    if (raw && this.thread && raw.length <= SMALL_MESSAGE && this.rawBytes + raw.length <= HELD_RAW_BYTES) {
      this.raws.set(id, raw);
      this.rawBytes += raw.length;
    }
    this.queued.add(id);
    this.queue.push(id);
    this.pump();
  }

  /** Resolves when nothing is queued or being parsed. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Stop taking work and wait for the messages being parsed now. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pollTimer);
    // What's still queued is not lost: it is unparsed in the store and the next start sweeps it.
    for (const id of this.queue.splice(0)) this.queued.delete(id);
    this.known.clear();
    this.raws.clear();
    this.rawBytes = 0;
    await this.sweeping?.catch(() => {});
    await this.idle();
    await this.thread?.close();
    this.thread = undefined;
  }

  private isIdle(): boolean {
    return this.running === 0 && this.queue.length === 0 && !this.sweeping;
  }

  private settle(): void {
    if (this.running === 0 && this.queue.length === 0) for (const w of this.drainWaiters.splice(0)) w();
    if (!this.isIdle()) return;
    for (const w of this.waiters.splice(0)) w();
  }

  /** Start parses while a slot is free: one of `workers`, or the small lane for a small message. */
  private pump(): void {
    while (!this.stopped && this.queue.length) {
      const id = this.queue[0];
      const size = this.known.get(id)?.size;
      const small = size !== undefined && size <= SMALL_MESSAGE && this.small < SMALL_LANE;
      // In order: a large message waiting for a slot holds back the ones behind it.
      if (!small && this.running - this.small >= this.deps.config.workers) return;
      this.queue.shift();
      this.running++;
      if (small) this.small++;
      void this.parseOne(id).finally(() => {
        this.parsedDuringPoll?.add(id);
        this.running--;
        if (small) this.small--;
        this.queued.delete(id);
        this.pump();
        this.settle();
      });
    }
  }

  private async parseOne(id: string): Promise<void> {
    const { db, blobs, log, metrics, config } = this.deps;
    try {
      const kept = this.known.get(id);
      this.known.delete(id);
      const held = this.takeRaw(id);
      const msg = kept ?? (await getMessage(db.kysely, id));
      if (!msg) return;
      const result = (await this.parseOnThread(msg, held)) ?? (await parseStored(msg, { blobs, config }));
      await (result.staged.every((s) => s.data) ? this.saveSoon(msg, result) : this.save(msg, result));
      if (result.save.parseStatus === 'raw') {
        metrics.parseFailures.inc();
        log.warn({ msg: 'kept as raw', id, reason: result.save.parseError });
      } else {
        metrics.parsed.inc();
        for (const defect of result.save.defects ?? []) metrics.parseDefects.inc({ defect });
        log.debug({ msg: 'parsed', id, parts: result.save.parts.length });
        if (result.truncated) log.warn({ msg: 'text body cut at the in-memory limit; raw is whole', id });
      }
      this.emit('parsed', id, { message: msg, saved: result.save });
    } catch (err) {
      // Store trouble (disk, database) rather than bad mail: leave the row unparsed so the next
      // start retries it, and say so loudly. Bad mail never lands here: parseStored reports it.
      const reason = (err as Error)?.message ?? String(err);
      this.failed.add(id);
      log.error({ msg: 'parse failed', id, err: reason });
    }
  }

  /**
   * Save a parse result: parts, their blobs and the message's parsed fields in one transaction,
   * shared with other writes (batchedWrite). Derived from the raw bytes: no fsync of its own
   * (relaxed); the WAL keeps commits in order, so a later durable commit covers it. A result
   * the database refuses is replaced by the raw result with the reason (`result.save` changes).
   */
  private async save(msg: StoredMessage, result: ParseResult): Promise<void> {
    const { db, blobs, log } = this.deps;
    let writing: 'blobs' | 'rows' = 'blobs';
    try {
      const inTransaction = await blobs.settle(result.staged);
      await batchedWrite(db, 'relaxed', async (trx) => {
        writing = 'blobs';
        await blobs.commit(inTransaction, trx);
        writing = 'rows';
        await writeParsed(trx, msg.id, result.save);
      });
    } catch (err) {
      if (writing === 'blobs') {
        await Promise.all(result.staged.map((s) => blobs.discard(s)));
        throw err;
      }
      // The database refused what we parsed (a value it cannot hold): keep the message as raw
      // with the reason rather than retry the same refusal on every start. The raw result
      // names only the raw blob; the parts' blobs rolled back with the rows (or, as files,
      // stay unreferenced, as before).
      if (result.save.parseStatus === 'raw') throw err;
      log.warn({ msg: 'parse result not storable; keeping as raw', id: msg.id, err: String(err) });
      result.save = rawResult(msg, `parse result could not be stored: ${(err as Error)?.message ?? err}`);
      await saveParsed(db.kysely, msg.id, result.save);
    }
  }

  /**
   * Save a result whose blobs are all in memory together with the others finishing in this
   * turn: their blobs, parts and rows in a handful of statements instead of five per message.
   * If that fails, each is saved on its own (save), so each learns its own outcome.
   */
  private saveSoon(msg: StoredMessage, result: ParseResult): Promise<void> {
    return new Promise((resolve, reject) => {
      this.saving.push({ msg, result, resolve, reject });
      if (this.saving.length === 1) setImmediate(() => void this.flushSaves());
    });
  }

  private async flushSaves(): Promise<void> {
    const { db, blobs } = this.deps;
    const items = this.saving.splice(0);
    const alone = (i: (typeof items)[number]) => this.save(i.msg, i.result).then(i.resolve, i.reject);
    if (items.length === 1) return alone(items[0]);
    try {
      const inTransaction = await blobs.settle(items.flatMap((i) => i.result.staged));
      await batchedWrite(db, 'relaxed', async (trx) => {
        await blobs.commit(inTransaction, trx);
        await writeParsedMany(
          trx,
          items.map((i) => ({ id: i.msg.id, result: i.result.save })),
        );
      });
    } catch {
      await Promise.all(items.map(alone));
      return;
    }
    for (const i of items) i.resolve();
  }

  private takeRaw(id: string): Uint8Array | undefined {
    const raw = this.raws.get(id);
    if (raw) {
      this.raws.delete(id);
      this.rawBytes -= raw.length;
    }
    return raw;
  }

  /**
   * A message of up to THREAD_PARSE_MAX parsed on the thread, its parts staged again in our
   * store (which decides where each one goes); undefined when it is larger, there is no
   * thread, or the thread could not answer.
   */
  private async parseOnThread(msg: StoredMessage, held: Uint8Array | undefined): Promise<ParseResult | undefined> {
    const { blobs } = this.deps;
    if (!this.thread || msg.size > THREAD_PARSE_MAX) return undefined;
    const raw = held ?? Buffer.concat(await (await blobs.open(msg.rawSha256)).toArray());
    const result = await this.thread.parse(msg, raw);
    if (!result) return undefined;
    // The thread hashed each part as it staged it: the hash is not computed twice (2 ms a MiB).
    const staged = await Promise.allSettled(result.staged.map((s) => blobs.stage([s.data!], { sha256: s.sha256 })));
    const failed = staged.find((s) => s.status === 'rejected');
    if (failed) {
      await Promise.all(staged.map((s) => (s.status === 'fulfilled' ? blobs.discard(s.value) : undefined)));
      throw failed.reason;
    }
    result.staged = staged.map((s) => (s as PromiseFulfilledResult<StagedBlob>).value);
    return result;
  }
}
