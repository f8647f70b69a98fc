import { stat } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';

/** What the checkpoint thread reports after each PASSIVE checkpoint (pages, as SQLite counts them). */
export interface CheckpointReport {
  /** Frames in the log when it ran. */
  log: number;
  /** Frames of them now in the database file. */
  checkpointed: number;
}

/** Options of a WalCheckpointer. */
export interface WalCheckpointerOptions {
  /** Milliseconds between checkpoints once the thread runs (default 200). */
  intervalMs?: number;
  /** Size of the -wal file at which the thread starts (default 1 MiB; 0: at once). */
  startAt?: number;
  /** Told when the thread starts: from then on commits must not checkpoint by themselves. */
  onStart: () => void;
  /** Told once if the thread fails; commits must then checkpoint by themselves again. */
  onFailure: (err: Error) => void;
}

/** How often the size of the log is looked at until the thread starts. */
const WATCH_MS = 1000;

/**
 * Runs SQLite's WAL checkpoints on a worker thread with its own connection (see
 * wal-checkpoint-worker.js for why), so that the connection serving SMTP commits with
 * `wal_autocheckpoint = 0` and never stalls the event loop on a database-file fsync.
 * The thread is an isolate of its own (~10 MiB resident), so it starts only once the log has
 * grown past `startAt`: a quarter of the 1,000 pages (4 MiB) at which SQLite would checkpoint
 * inside a commit, so under load it runs before that happens, and a server that writes little
 * never pays for it. Until then SQLite checkpoints by itself, as short commands do.
 * If the thread fails, `onFailure` is told, and the owner turns automatic checkpoints back on:
 * a log that is never checkpointed would grow without end.
 */
export class WalCheckpointer {
  private worker: Worker | undefined;
  private readonly watch: NodeJS.Timeout | undefined;
  private stopped = false;
  private exited = false;
  last: CheckpointReport | undefined;

  constructor(
    private readonly file: string,
    private readonly opts: WalCheckpointerOptions,
  ) {
    const startAt = opts.startAt ?? 1024 * 1024;
    if (startAt <= 0) {
      this.start();
      return;
    }
    this.watch = setInterval(() => {
      stat(`${file}-wal`).then(
        (s) => s.size >= startAt && this.start(),
        () => {}, // no log yet
      );
    }, WATCH_MS);
    this.watch.unref();
  }

  /** Whether the thread has been started. */
  get running(): boolean {
    return this.worker !== undefined;
  }

  private start(): void {
    if (this.worker || this.stopped) return;
    clearInterval(this.watch);
    const worker = new Worker(new URL('./wal-checkpoint-worker.js', import.meta.url), {
      workerData: { file: this.file, intervalMs: this.opts.intervalMs ?? 200 },
    });
    this.worker = worker;
    // The thread must not keep a finished process alive.
    worker.unref();
    let failed = false;
    const fail = (err: Error) => {
      if (failed || this.stopped) return;
      failed = true;
      this.opts.onFailure(err);
    };
    worker.on('message', (m: { type: string; message?: string } & CheckpointReport) => {
      if (m.type === 'checkpoint') this.last = { log: m.log, checkpointed: m.checkpointed };
      else if (m.type === 'error') fail(new Error(`WAL checkpoint failed: ${m.message}`));
    });
    worker.on('error', fail);
    worker.on('exit', (code) => {
      this.exited = true;
      fail(new Error(`WAL checkpoint thread exited (${code})`));
    });
    this.opts.onStart();
  }

  /** Checkpoint once more, then close the thread's connection (before the main one closes). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.watch);
    const worker = this.worker;
    if (!worker || this.exited) return;
    // Held while closing: the last checkpoint must finish before the process may end.
    worker.ref();
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('stop');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
    await worker.terminate();
  }
}
