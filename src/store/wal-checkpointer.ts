import { Worker } from 'node:worker_threads';

/** What the checkpoint thread reports after each PASSIVE checkpoint (pages, as SQLite counts them). */
export interface CheckpointReport {
  /** Frames in the log when it ran. */
  log: number;
  /** Frames of them now in the database file. */
  checkpointed: number;
}

/**
 * Runs SQLite's WAL checkpoints on a worker thread with its own connection (see
 * wal-checkpoint-worker.js for why), so that the connection serving SMTP commits with
 * `wal_autocheckpoint = 0` and never stalls the event loop on a database-file fsync.
 * If the thread fails, `onFailure` is told, and the owner turns automatic checkpoints back on:
 * a log that is never checkpointed would grow without end.
 */
export class WalCheckpointer {
  private readonly worker: Worker;
  private stopped = false;
  last: CheckpointReport | undefined;

  constructor(file: string, opts: { intervalMs?: number; onFailure: (err: Error) => void }) {
    this.worker = new Worker(new URL('./wal-checkpoint-worker.js', import.meta.url), {
      workerData: { file, intervalMs: opts.intervalMs ?? 200 },
    });
    // The thread must not keep a finished process alive.
    this.worker.unref();
    let failed = false;
    const fail = (err: Error) => {
      if (failed || this.stopped) return;
      failed = true;
      opts.onFailure(err);
    };
    this.worker.on('message', (m: { type: string; message?: string } & CheckpointReport) => {
      if (m.type === 'checkpoint') this.last = { log: m.log, checkpointed: m.checkpointed };
      else if (m.type === 'error') fail(new Error(`WAL checkpoint failed: ${m.message}`));
    });
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`WAL checkpoint thread exited (${code})`)));
  }

  /** Checkpoint once more, then close the thread's connection (before the main one closes). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // Held while closing: the last checkpoint must finish before the process may end.
    this.worker.ref();
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage('stop');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
    await this.worker.terminate();
  }
}
