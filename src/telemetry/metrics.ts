import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the queue gauges show (store/health.ts reads it). */
export interface QueueSnapshot {
  deliveries: { pending: number; failed: number; dead: number };
  oldestPendingSeconds: number;
  parseBacklog: number;
}

/** Every Prometheus metric Postroom exports, on one registry (no global default registry). */
export function createMetrics() {
  const registry = new Registry();
  let rawSource: (() => Promise<{ status: string; n: number }[]>) | undefined;
  let queueSource: (() => Promise<QueueSnapshot>) | undefined;
  // The four queue gauges are collected together (prom-client asks every metric at once): they
  // share one read of the store per scrape instead of four.
  let queueRead: Promise<QueueSnapshot | undefined> | undefined;
  const queueSnapshot = () =>
    (queueRead ??= (queueSource ? queueSource() : Promise.resolve(undefined)).finally(() => {
      queueRead = undefined;
    }));
  collectDefaultMetrics({ register: registry, prefix: 'postroom_process_' });
  const m = {
    registry,
    configReloads: new Counter({
      name: 'postroom_config_reloads_total',
      help: 'Config reloads (SIGHUP, postroom reload, POST /api/v1/system/reload), by result: applied, unchanged, invalid (the running config kept)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    configGeneration: new Gauge({
      name: 'postroom_config_generation',
      help: 'Generation of the config in force: 1 at start, raised by each applied reload',
      registers: [registry],
    }),
    configInfo: new Gauge({
      name: 'postroom_config_info',
      help: 'Always 1; its hash label is a fingerprint of the config in force (compare nodes with it)',
      labelNames: ['hash'] as const,
      registers: [registry],
    }),
    routesVersion: new Gauge({
      name: 'postroom_api_routes_version',
      help: 'The counter of route changes made through the API that this node has applied (equal on every node once they have caught up)',
      registers: [registry],
    }),
    messages: new Counter({
      name: 'postroom_messages_total',
      help: 'Messages offered to intake, by ingress and outcome (accepted, duplicate, rejected, failed)',
      labelNames: ['ingress', 'outcome'] as const,
      registers: [registry],
    }),
    bytes: new Counter({
      name: 'postroom_message_bytes_total',
      help: 'Bytes of messages kept, by ingress',
      labelNames: ['ingress'] as const,
      registers: [registry],
    }),
    rejections: new Counter({
      name: 'postroom_rejections_total',
      help: 'Replies refusing mail, by ingress and RFC 3463 enhanced status code',
      labelNames: ['ingress', 'status'] as const,
      registers: [registry],
    }),
    parseFailures: new Counter({
      name: 'postroom_parse_failures_total',
      help: 'Messages kept as raw because they could not be parsed',
      registers: [registry],
    }),
    parsed: new Counter({
      name: 'postroom_messages_parsed_total',
      help: 'Messages parsed into parts',
      registers: [registry],
    }),
    parseDefects: new Counter({
      name: 'postroom_parse_defects_total',
      help: 'Defects found in messages that still parsed, by defect (src/core/mime-defects.ts; a closed list)',
      labelNames: ['defect'] as const,
      registers: [registry],
    }),
    sweepRemoved: new Counter({
      name: 'postroom_sweep_removed_total',
      help: 'Leftovers of faults removed by the sweep: blob (no row points at it) or staging (file of a process that died)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    retentionRemoved: new Counter({
      name: 'postroom_retention_removed_total',
      help: 'Removed by retention (retention: and each route\'s retention:): message (rows) or blob (bytes no row named any more, removed by the sweep after them)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    retentionFreedBytes: new Counter({
      name: 'postroom_retention_freed_bytes_total',
      help: 'Bytes of blobs (raw messages and parts) that no row named any more once retention removed their messages',
      registers: [registry],
    }),
    retentionLastRun: new Gauge({
      name: 'postroom_retention_last_run_timestamp_seconds',
      help: 'When this node last finished a retention run (Unix time), whether or not it removed anything',
      registers: [registry],
    }),
    rawMessages: new Gauge({
      name: 'postroom_raw_messages',
      help: 'Kept messages that could not be parsed (parse status raw), by routing/delivery status',
      labelNames: ['status'] as const,
      registers: [registry],
      // Counted in the store when scraped: the parse outcome lasts whatever delivery does, and
      // a counter could not say how many of them were delivered. Few rows (index on parse_status).
      async collect() {
        if (!rawSource) return;
        const rows = await rawSource();
        this.reset();
        for (const r of rows) this.set({ status: r.status }, r.n);
      },
    }),
    deliveryQueue: new Gauge({
      name: 'postroom_delivery_queue',
      help: 'Deliveries in the store by status: pending (waiting or between retries), failed (refused for good), dead (retries exhausted); done is not counted',
      labelNames: ['status'] as const,
      registers: [registry],
      // Counted in the store when scraped (every node sees the whole queue), as one indexed range per status.
      async collect() {
        const s = await queueSnapshot();
        if (!s) return;
        for (const [status, n] of Object.entries(s.deliveries)) this.set({ status }, n);
      },
    }),
    deadLetters: new Gauge({
      name: 'postroom_dead_letters',
      help: 'Deliveries whose retries are exhausted (status dead), waiting for `postroom replay` or a retry by hand',
      registers: [registry],
      async collect() {
        const s = await queueSnapshot();
        if (s) this.set(s.deliveries.dead);
      },
    }),
    oldestPending: new Gauge({
      name: 'postroom_delivery_oldest_pending_seconds',
      help: 'Age of the oldest pending delivery (since it was planned); 0 when none is pending',
      registers: [registry],
      async collect() {
        const s = await queueSnapshot();
        if (s) this.set(s.oldestPendingSeconds);
      },
    }),
    parseBacklog: new Gauge({
      name: 'postroom_parse_backlog',
      help: 'Kept messages not parsed yet (parse status pending)',
      registers: [registry],
      async collect() {
        const s = await queueSnapshot();
        if (s) this.set(s.parseBacklog);
      },
    }),
    commitBatch: new Histogram({
      name: 'postroom_intake_commit_batch_size',
      help: 'Messages made durable by one fsync + commit (group commit)',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers: [registry],
    }),
    smtpSessions: new Gauge({
      name: 'postroom_smtp_sessions',
      help: 'Open SMTP connections',
      registers: [registry],
    }),
    deliveries: new Counter({
      name: 'postroom_delivery_attempts_total',
      help: 'Delivery attempts by target kind and outcome (done, transient, permanent, dead)',
      labelNames: ['kind', 'outcome'] as const,
      registers: [registry],
    }),
    deliveryAttemptSeconds: new Histogram({
      name: 'postroom_delivery_attempt_seconds',
      help: 'Time one delivery attempt took, by target kind',
      labelNames: ['kind'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    fetchMessages: new Counter({
      name: 'postroom_fetch_messages_total',
      help: 'Messages fetched from mail accounts, by protocol, account, folder and outcome (kept, duplicate, refused)',
      labelNames: ['protocol', 'account', 'folder', 'outcome'] as const,
      registers: [registry],
    }),
    fetchPolls: new Counter({
      name: 'postroom_fetch_polls_total',
      help: 'Polls (passes over a folder) by account, folder and outcome (ok, error)',
      labelNames: ['account', 'folder', 'outcome'] as const,
      registers: [registry],
    }),
    fetchFailures: new Gauge({
      name: 'postroom_fetch_folder_consecutive_failures',
      help: 'Failed polls of a folder since its last successful one (watched by this node)',
      labelNames: ['account', 'folder'] as const,
      registers: [registry],
    }),
    fetchLastSuccess: new Gauge({
      name: 'postroom_fetch_folder_last_success_timestamp_seconds',
      help: 'When a folder was last polled successfully by this node (Unix time)',
      labelNames: ['account', 'folder'] as const,
      registers: [registry],
    }),
    fetchStale: new Gauge({
      name: 'postroom_fetch_folder_stale',
      help: '1 when a folder watched by this node has had no successful poll for mail.staleAfter',
      labelNames: ['account', 'folder'] as const,
      registers: [registry],
    }),
    /** Where postroom_raw_messages is counted (the store, once it is open). */
    countRawWith(fn: () => Promise<{ status: string; n: number }[]>) {
      rawSource = fn;
    },
    /** Where the queue gauges are read (the store, once it is open). */
    readQueueWith(fn: () => Promise<QueueSnapshot>) {
      queueSource = fn;
    },
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
