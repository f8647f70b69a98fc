import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { loadPg, type Db, type PgTarget } from './db.js';

/** A lease on one key (e.g. one IMAP mailbox): while held, no other node holds it. */
export interface Lease {
  readonly key: string;
  /** Aborted when the lease is lost (connection to the database dropped) or released. */
  readonly signal: AbortSignal;
  /** Give the lease up; another node may take it at once. */
  release(): Promise<void>;
}

/** Where leases come from: one per node. */
export interface Leases {
  /** Take the lease on `key` if nobody holds it; undefined if another holder has it. */
  tryAcquire(key: string): Promise<Lease | undefined>;
  /** Release every lease and close the connection behind them. */
  close(): Promise<void>;
}

export interface LeaseOptions {
  /** How often held leases are re-checked against the server (default 5 s). */
  checkMs?: number;
  /** Told when leases are lost because the connection failed. */
  onLost?: (keys: string[], err?: Error) => void;
}

/** Leases for this store: PostgreSQL advisory locks, or in-process on SQLite (one node by definition). */
export function openLeases(db: Db, opts: LeaseOptions = {}): Leases {
  return db.dialect === 'postgres' && db.pg ? new PgLeases(db.pg, opts) : new LocalLeases();
}

/** In-process leases: SQLite means one node, so one map is the whole truth. */
export class LocalLeases implements Leases {
  private readonly held = new Map<string, AbortController>();

  async tryAcquire(key: string): Promise<Lease | undefined> {
    if (this.held.has(key)) return undefined;
    const ctl = new AbortController();
    this.held.set(key, ctl);
    return {
      key,
      signal: ctl.signal,
      release: async () => {
        if (this.held.get(key) !== ctl) return;
        this.held.delete(key);
        ctl.abort();
      },
    };
  }

  async close(): Promise<void> {
    for (const ctl of this.held.values()) ctl.abort();
    this.held.clear();
  }
}

/** The 64-bit advisory-lock id of a key, namespaced by schema (locks are per database, not schema). */
export function lockId(namespace: string, key: string): bigint {
  const h = createHash('sha256').update(`postroom-lease\0${namespace}\0${key}`).digest();
  return h.readBigInt64BE(0);
}

interface Held {
  id: bigint;
  /** How pg_locks shows a bigint advisory lock: classid = high 32 bits, objid = low 32 bits. */
  tag: string;
  ctl: AbortController;
}

/**
 * Leases as session-level advisory locks (`pg_try_advisory_lock`) on one dedicated connection.
 * The server frees a session lock when its connection ends, so a node that dies (SIGKILL, crash)
 * loses its leases as soon as the server notices: at once when the kernel closes the socket, or
 * after the TCP keepalive probes below (~25 s) when the whole host vanished. Held leases are
 * re-checked every `checkMs` against pg_locks; a failed or slow check counts as lost, so the
 * holder stops working before another node can have taken over.
 */
export class PgLeases implements Leases {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private readonly held = new Map<string, Held>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly checkMs: number;

  constructor(
    private readonly target: PgTarget,
    private readonly opts: LeaseOptions = {},
  ) {
    this.checkMs = opts.checkMs ?? 5_000;
  }

  private connect(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const client = new (loadPg().Client)({
        connectionString: this.target.connectionString,
        // Server-side keepalives bound how long a lock outlives a host that vanished.
        options: `${this.target.options ?? ''} -c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3`,
        keepAlive: true,
        keepAliveInitialDelayMillis: 10_000,
        query_timeout: Math.max(1_000, this.checkMs),
        connectionTimeoutMillis: 10_000,
      });
      client.on('error', (err) => this.lostAll(client, err));
      client.on('end', () => this.lostAll(client));
      try {
        await client.connect();
      } catch (err) {
        this.connecting = undefined;
        throw err;
      }
      this.client = client;
      this.connecting = undefined;
      return client;
    })();
    return this.connecting;
  }

  /** The connection `client` is gone or unreliable: every lease on it is lost. */
  private lostAll(client: pg.Client, err?: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.end().catch(() => {});
    const keys = [...this.held.keys()];
    for (const h of this.held.values()) h.ctl.abort();
    this.held.clear();
    this.stopTimer();
    if (keys.length) this.opts.onLost?.(keys, err);
  }

  async tryAcquire(key: string): Promise<Lease | undefined> {
    if (this.closed) throw new Error('leases closed');
    // Session locks nest: taking one twice on our connection would "succeed"; refuse instead.
    if (this.held.has(key)) return undefined;
    const client = await this.connect();
    const id = lockId(this.target.schema ?? 'public', key);
    const r = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1::bigint) as ok', [id.toString()]);
    if (!r.rows[0]?.ok) return undefined;
    const u = BigInt.asUintN(64, id);
    const held: Held = { id, tag: `${u >> 32n}:${u & 0xffffffffn}`, ctl: new AbortController() };
    this.held.set(key, held);
    this.startTimer();
    return { key, signal: held.ctl.signal, release: () => this.release(key, held) };
  }

  private async release(key: string, held: Held): Promise<void> {
    if (this.held.get(key) !== held) return;
    this.held.delete(key);
    held.ctl.abort();
    if (!this.held.size) this.stopTimer();
    await this.client?.query('select pg_advisory_unlock($1::bigint)', [held.id.toString()]).catch(() => {});
  }

  /** Ask the server which of our locks it still grants; anything missing is lost. */
  async check(): Promise<void> {
    const client = this.client;
    if (!client || !this.held.size) return;
    let tags: Set<string>;
    try {
      const r = await client.query<{ tag: string }>(
        `select classid::text || ':' || objid::text as tag from pg_locks
          where locktype = 'advisory' and objsubid = 1 and granted and pid = pg_backend_pid()`,
      );
      tags = new Set(r.rows.map((x) => x.tag));
    } catch (err) {
      this.lostAll(client, err as Error);
      return;
    }
    const lost: string[] = [];
    for (const [key, h] of this.held) {
      if (tags.has(h.tag)) continue;
      this.held.delete(key);
      h.ctl.abort();
      lost.push(key);
    }
    if (lost.length) this.opts.onLost?.(lost);
  }

  private startTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.check(), this.checkMs);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopTimer();
    for (const h of this.held.values()) h.ctl.abort();
    this.held.clear();
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    // Ending the session frees every advisory lock it held.
    await client?.end().catch(() => {});
  }
}

/**
 * Run `work` whenever this node holds the lease on `key`: try every `retryMs`; when taken, run
 * `work(signal)` until it returns or the signal aborts (lease lost, or stop()).
 */
export function whileLeased(
  leases: Leases,
  key: string,
  work: (signal: AbortSignal) => Promise<void>,
  opts: { retryMs?: number; onError?: (err: unknown) => void } = {},
): { stop(): Promise<void> } {
  const stopping = new AbortController();
  const retryMs = opts.retryMs ?? 5_000;
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      let lease: Lease | undefined;
      try {
        lease = await leases.tryAcquire(key);
      } catch (err) {
        opts.onError?.(err);
      }
      if (lease) {
        try {
          await work(AbortSignal.any([lease.signal, stopping.signal]));
        } catch (err) {
          opts.onError?.(err);
        } finally {
          await lease.release().catch(() => {});
        }
      }
      await sleep(retryMs, undefined, { signal: stopping.signal }).catch(() => {});
    }
  })();
  return {
    async stop() {
      stopping.abort();
      await loop;
    },
  };
}
