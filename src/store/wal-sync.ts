import { open, type FileHandle } from 'node:fs/promises';

/**
 * Makes SQLite's write-ahead log durable from libuv's thread pool instead of the event loop.
 * better-sqlite3 is synchronous: a FULL commit fsyncs the WAL on the main thread, and every
 * SMTP session waits those milliseconds. Instead intake commits with synchronous=NORMAL (the
 * frames are written to the WAL, not synced) and then calls after(), which resolves once an
 * fsync of the WAL file that *started after the call* has finished. fsync flushes the file
 * whatever descriptor wrote to it (POSIX), so the commit is then as durable as a FULL commit;
 * concurrent callers share fsyncs, which is group commit.
 *
 * The WAL file is never deleted while our connection is open (SQLite removes it only when
 * the last connection closes), so one descriptor serves for the process's life.
 */
export class WalSync {
  private fd: FileHandle | undefined;
  private inFlight: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  constructor(private readonly walPath: string) {}

  /** Resolves when everything written to the WAL before this call is on disk. */
  after(): Promise<void> {
    if (this.queued) return this.queued;
    if (!this.inFlight) return (this.inFlight = this.sync());
    // An fsync is running, but it may have started before our commit: queue one more, shared
    // by everyone who asks until it starts.
    this.queued = this.inFlight
      .catch(() => {})
      .then(() => {
        this.queued = undefined;
        return (this.inFlight = this.sync());
      });
    return this.queued;
  }

  private async sync(): Promise<void> {
    try {
      this.fd ??= await open(this.walPath, 'r');
      await this.fd.sync();
    } finally {
      this.inFlight = undefined;
    }
  }

  /** Close the descriptor (after the database is closed). */
  async close(): Promise<void> {
    await this.inFlight?.catch(() => {});
    await this.fd?.close().catch(() => {});
    this.fd = undefined;
  }
}
