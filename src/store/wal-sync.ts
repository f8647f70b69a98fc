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
  /**
   * An fsync of the log failed: frames committed before it may not be on disk, and Linux reports
   * a writeback error once (a later fsync succeeds without having written them). A sender told
   * 451 retries, and its retransmission would find the committed row and be acknowledged as a
   * duplicate of something that may not be durable. So nothing is synced (acknowledged) again
   * until `recover` has copied the log into the database file and synced that.
   */
  private suspect = false;
  private closed = false;

  /**
   * @param recover after a failed fsync: checkpoint the whole log into the database file and
   *   sync it (reads come from the page cache, which still holds what was committed), throwing
   *   if it could not; until it succeeds every sync fails.
   */
  constructor(
    private readonly walPath: string,
    private readonly recover: () => Promise<void> = async () => {},
    private readonly openFile: (path: string, flags: string) => Promise<Pick<FileHandle, 'sync' | 'close'>> = open,
  ) {}

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
      if (this.suspect) {
        await this.recover();
        this.suspect = false;
      }
      // A commit that asks after close() (it raced the shutdown) gets an error, not a new
      // descriptor: nothing would close that one, and if the same file is opened again in this
      // process (a restart) it would hold the next database's log; Node closes such a handle on
      // garbage collection with DEP0137, and says that will become an error.
      if (this.closed && !this.fd) throw new Error('the database is closed: its log cannot be synced');
      this.fd ??= (await this.openFile(this.walPath, 'r')) as FileHandle;
      await this.fd.sync().catch((err: unknown) => {
        this.suspect = true;
        throw err;
      });
    } finally {
      this.inFlight = undefined;
    }
  }

  /** Whether a failed fsync still waits for its recovery (for logs and tests). */
  get unsure(): boolean {
    return this.suspect;
  }

  /** Close the descriptor (after the database is closed). */
  async close(): Promise<void> {
    this.closed = true;
    // A sync queued before the close belongs to commits made before it: let it run on the
    // descriptor before that is closed.
    for (let p = this.queued ?? this.inFlight; p; p = this.queued ?? this.inFlight) await p.catch(() => {});
    await this.fd?.close().catch(() => {});
    this.fd = undefined;
  }
}
