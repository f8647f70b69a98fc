import { Worker } from 'node:worker_threads';
import type { StoredMessage } from '../core/message.js';
import type { Logger } from '../telemetry/log.js';
import type { ParseLimits, ParseResult } from './parse.js';

/** A message for the thread: the row as intake kept it and its raw bytes. */
export interface ThreadRequest {
  seq: number;
  message: StoredMessage;
  raw: Uint8Array;
}

/**
 * The thread's answer: what parseStored returned, or why it threw. The parts are staged in
 * memory and arrive as plain Uint8Arrays (a Buffer does not survive the copy between threads):
 * the receiver stages them again in its own store, which decides where each one goes.
 */
export interface ThreadReply {
  seq: number;
  result?: ParseResult;
  error?: string;
}

/** A thread that died this many times is not started again; parsing stays in-process. */
const MAX_DEATHS = 3;

/**
 * Parses messages of up to a few MiB on a worker thread, so that mailparser's CPU (and its garbage) is spent
 * beside the event loop that answers SMTP, not on it: at 4 KiB intake rates parsing was a
 * fifth of the loop. The thread only parses, from bytes handed to it, in memory; the store is
 * written on the main thread as before (one connection, batched commits).
 *
 * `parse` resolves undefined when the thread cannot answer (it died, or threw): the caller
 * parses in-process instead, so a broken thread costs speed, never mail. The thread is started
 * on first use and ended after `idleMs` without work, so a quiet server keeps no second heap.
 */
export class ParseThread {
  private worker: Worker | undefined;
  private seq = 0;
  private readonly pending = new Map<number, (r: ParseResult | undefined) => void>();
  private idleTimer: NodeJS.Timeout | undefined;
  private deaths = 0;
  private closed = false;

  constructor(
    private readonly config: ParseLimits,
    private readonly log: Logger,
    private readonly idleMs = 30_000,
  ) {}

  /** Parse `message` from `raw` on the thread; undefined: parse it in-process instead. */
  parse(message: StoredMessage, raw: Uint8Array): Promise<ParseResult | undefined> {
    const worker = this.start();
    if (!worker) return Promise.resolve(undefined);
    clearTimeout(this.idleTimer);
    const seq = ++this.seq;
    return new Promise((resolve) => {
      this.pending.set(seq, resolve);
      worker.postMessage({ seq, message, raw } satisfies ThreadRequest);
    });
  }

  /** End the thread (messages being parsed there come back undefined). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    const worker = this.worker;
    this.worker = undefined;
    for (const resolve of this.pending.values()) resolve(undefined);
    this.pending.clear();
    await worker?.terminate();
  }

  private start(): Worker | undefined {
    if (this.worker) return this.worker;
    if (this.closed || this.deaths >= MAX_DEATHS) return undefined;
    // From dist/ the body is JavaScript; from src/ under tsx (the tests) it is TypeScript, and
    // the plain-JavaScript entry registers tsx in the thread first.
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    const worker = new Worker(new URL('./parse-thread-entry.js', import.meta.url), {
      workerData: { body: new URL(`./parse-thread-body${ext}`, import.meta.url).href, config: this.config },
    });
    // Never what keeps a finished process alive; ParseAndStore.stop() waits for its parses.
    worker.unref();
    worker.on('message', (reply: ThreadReply) => this.answer(reply));
    worker.on('error', (err) => this.died(worker, err));
    worker.on('exit', (code) => this.died(worker, new Error(`parse thread exited (${code})`)));
    this.worker = worker;
    return worker;
  }

  private answer(reply: ThreadReply): void {
    const resolve = this.pending.get(reply.seq);
    if (!resolve) return;
    this.pending.delete(reply.seq);
    if (reply.error !== undefined) {
      this.log.warn({ msg: 'parse thread failed; parsing in-process', err: reply.error });
      resolve(undefined);
    } else {
      resolve(reply.result);
    }
    if (!this.pending.size) {
      this.idleTimer = setTimeout(() => void this.stop(), this.idleMs);
      this.idleTimer.unref();
    }
  }

  private died(worker: Worker, err: Error): void {
    if (this.worker !== worker) return; // ended by stop(), or already counted
    this.worker = undefined;
    if (!this.closed) {
      this.deaths++;
      this.log.error({ msg: 'parse thread died; its messages are parsed in-process', err: err.message, deaths: this.deaths });
    }
    for (const resolve of this.pending.values()) resolve(undefined);
    this.pending.clear();
  }

  private async stop(): Promise<void> {
    clearTimeout(this.idleTimer);
    const worker = this.worker;
    if (!worker || this.pending.size) return;
    this.worker = undefined;
    await worker.terminate();
  }
}
