import { listFolders, getAccount, getProfile, listAccounts, type MailFolder } from '../../domain/accounts/store.js';
import { discoverFolders } from './discover.js';
import { whileLeased, type Leases } from '../../store/leases.js';
import { watchFolder, type WatchDeps } from './watch.js';

interface Running {
  updatedAt: string;
  handle: { stop(): Promise<void> };
  /** This node holds the folder's lease and its watcher runs. */
  active: boolean;
  since: number;
  stale: boolean;
  labels: { account: string; folder: string };
}

/** Whether a folder is stale: enabled, and no successful poll for `staleAfter` (counted from `since` if never). */
export function isStale(f: Pick<MailFolder, 'enabled' | 'health' | 'createdAt'>, staleAfter: number, now = Date.now(), since?: number): boolean {
  if (!f.enabled) return false;
  const last = f.health.lastOkAt ? Date.parse(f.health.lastOkAt) : (since ?? Date.parse(f.createdAt));
  return now - last > staleAfter;
}

/**
 * Runs one watcher per enabled folder, each under the folder's lease (DESIGN: one node polls a
 * mailbox at a time; PostgreSQL advisory lock, in-process on SQLite), so a folder is taken over
 * when its node dies. Rescans the store every `rescanInterval` (and at once on refresh()) for
 * folders enabled, disabled or changed; a changed folder's watcher restarts with the new settings.
 */
export class FetchScheduler {
  private readonly running = new Map<string, Running>();
  private timer: NodeJS.Timeout | undefined;
  private listTimer: NodeJS.Timeout | undefined;
  private listing = false;
  private scanning: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly deps: WatchDeps & { leases: Leases; leaseRetryMs?: number }) {}

  /** Start: scan now, then every rescanInterval. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), Math.max(1000, this.deps.config.rescanInterval));
    this.timer.unref();
    const every = this.deps.config.folderListInterval;
    if (every > 0) {
      this.listTimer = setInterval(() => void this.listServerFolders(), Math.max(1000, every));
      this.listTimer.unref();
    }
  }

  /**
   * Ask every account's server for its folder list again (as the email processor service
   * polled it): a folder made on the server appears, disabled, without a refresh through the
   * API. A server that cannot be asked now is asked again next time; nothing here stops mail.
   */
  async listServerFolders(): Promise<void> {
    if (this.listing || this.stopped) return;
    this.listing = true;
    try {
      for (const account of await listAccounts(this.deps.db)) {
        if (this.stopped) return;
        const profile = await getProfile(this.deps.db, account.profile);
        if (!profile) continue;
        const { discovery } = await discoverFolders(this.deps.db, this.deps.box, profile, account);
        if (!discovery.ok) this.deps.log.debug({ account: account.id, error: discovery.error }, 'folder list not read; trying again next time');
      }
    } catch (err) {
      this.deps.log.warn({ err }, 'reading folder lists failed; trying again next time');
    } finally {
      this.listing = false;
    }
  }

  /** Rescan the store now (after a change through the API). */
  refresh(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.scanning) {
      this.again = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      do {
        this.again = false;
        try {
          await this.scan();
          await this.checkStale();
        } catch (err) {
          this.deps.log.error({ err }, 'mail folder scan failed; trying again at the next rescan');
        }
      } while (this.again && !this.stopped);
    })().finally(() => (this.scanning = undefined));
    return this.scanning;
  }

  private async scan(): Promise<void> {
    const enabled = await listFolders(this.deps.db, { enabled: true });
    const want = new Map(enabled.map((f) => [f.id, f]));
    for (const [id, r] of this.running) {
      const f = want.get(id);
      if (f && f.updatedAt === r.updatedAt) continue;
      this.running.delete(id);
      this.deps.metrics.fetchStale.remove(r.labels);
      await r.handle.stop();
    }
    for (const f of enabled) {
      if (this.running.has(f.id) || this.stopped) continue;
      const account = await getAccount(this.deps.db, f.account);
      const r: Running = {
        updatedAt: f.updatedAt,
        active: false,
        since: Date.now(),
        stale: false,
        labels: { account: account?.name ?? f.account, folder: f.path },
        handle: { stop: async () => {} },
      };
      r.handle = whileLeased(
        this.deps.leases,
        `mail-folder:${f.id}`,
        async (signal) => {
          r.active = true;
          r.since = Date.now();
          try {
            await watchFolder(this.deps, f.id, signal);
          } finally {
            r.active = false;
          }
        },
        { retryMs: this.deps.leaseRetryMs ?? 5_000, onError: (err) => this.deps.log.warn({ err, folder: f.id }, 'mail folder lease failed') },
      );
      this.running.set(f.id, r);
    }
  }

  /** Flag folders this node watches that had no successful poll for staleAfter; warn once when one goes stale. */
  private async checkStale(): Promise<void> {
    const folders = new Map((await listFolders(this.deps.db, { enabled: true })).map((f) => [f.id, f]));
    for (const [id, r] of this.running) {
      const f = folders.get(id);
      if (!f || !r.active) continue;
      const stale = isStale(f, this.deps.config.staleAfter, Date.now(), r.since);
      this.deps.metrics.fetchStale.set(r.labels, stale ? 1 : 0);
      if (stale && !r.stale) {
        this.deps.log.warn(
          { folder: id, account: r.labels.account, path: f.path, lastOkAt: f.health.lastOkAt, lastError: f.health.lastError },
          'mail folder is stale: no successful poll within mail.staleAfter',
        );
      }
      r.stale = stale;
    }
  }

  /** Folders this node watches right now (holds the lease for). */
  activeFolders(): string[] {
    return [...this.running].filter(([, r]) => r.active).map(([id]) => id);
  }

  /** Stop every watcher and release the leases. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.listTimer) clearInterval(this.listTimer);
    await this.scanning?.catch(() => {});
    await Promise.all([...this.running.values()].map((r) => r.handle.stop()));
    this.running.clear();
    await this.deps.leases.close();
  }
}
