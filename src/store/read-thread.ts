import { Worker } from 'node:worker_threads';
import type { MessageFilter, MessagePage } from './message-filter.js';

export interface ReadRequest {
  seq: number;
  filter: MessageFilter;
}

export type ReadReply = { seq: number; page: MessagePage; error?: undefined } | { seq: number; error: string; page?: undefined };

/** After this many deaths the thread is not started again: reads run on the loop, as before. */
const MAX_DEATHS = 3;

/**
 * SQLite reads for the API off the event loop that serves SMTP: better-sqlite3 is synchronous,
 * and a search over a million rows held every SMTP session still while it ran (greeting p50
 * 935 ms instead of 1 ms). The thread has its own read-only connection (WAL: it reads while
 * intake writes); it starts at the first read and ends after idleMs without one. Undefined
 * answers mean "run it here": the thread is gone or failed, and the caller reads on the loop.
 */
export class ReadThread {
  private worker?: Worker;
  private seq = 0;
  private deaths = 0;
  private closed = false;
  private idleTimer?: NodeJS.Timeout;
  private readonly pending = new Map<number, { resolve: (p: MessagePage | undefined) => void; reject: (e: Error) => void }>();

  constructor(
    private readonly file: string,
    private readonly opts: { idleMs?: number; onError?: (err: Error) => void } = {},
  ) {}

  /** listMessagePage on the thread; undefined when there is no thread to run it. */
  listMessagePage(filter: MessageFilter): Promise<MessagePage | undefined> {
    const worker = this.start();
    if (!worker) return Promise.resolve(undefined);
    clearTimeout(this.idleTimer);
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      worker.postMessage({ seq, filter } satisfies ReadRequest);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    const worker = this.worker;
    this.worker = undefined;
    for (const p of this.pending.values()) p.resolve(undefined);
    this.pending.clear();
    await worker?.terminate();
  }

  private start(): Worker | undefined {
    if (this.worker) return this.worker;
    if (this.closed || this.deaths >= MAX_DEATHS) return undefined;
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    const worker = new Worker(new URL('./read-thread-entry.js', import.meta.url), {
      workerData: { body: new URL(`./read-thread-body${ext}`, import.meta.url).href, file: this.file },
    });
    worker.unref();
    worker.on('message', (reply: ReadReply) => this.answer(reply));
    worker.on('error', (err) => this.died(worker, err));
    worker.on('exit', (code) => this.died(worker, new Error(`read thread exited (${code})`)));
    this.worker = worker;
    return worker;
  }

  private answer(reply: ReadReply): void {
    const p = this.pending.get(reply.seq);
    if (!p) return;
    this.pending.delete(reply.seq);
    // A query the database refused is the caller's error (as it would be on the loop).
    if (reply.error !== undefined) p.reject(new Error(reply.error));
    else p.resolve(reply.page);
    if (!this.pending.size) {
      this.idleTimer = setTimeout(() => void this.stop(), this.opts.idleMs ?? 30_000);
      this.idleTimer.unref();
    }
  }

  private died(worker: Worker, err: Error): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    if (!this.closed) {
      this.deaths++;
      this.opts.onError?.(err);
    }
    for (const p of this.pending.values()) p.resolve(undefined);
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
