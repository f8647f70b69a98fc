import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Config } from './config/schema.js';
import { makeDirsSync } from './core/make-dirs.js';
import { createApiServer, type ApiServer } from './api/server.js';
import { assembleDoor } from './assemble.js';
import type { DnsLookup } from './net/dns-cache.js';
import { DEFAULT_RETRY } from './config/retry.js';
import { resolveSecret, secretBox, type SecretBox } from './domain/accounts/secret-box.js';
import { FetchScheduler } from './ingress/fetch/scheduler.js';
import { createSmtpIngress, type SmtpIngress } from './ingress/smtp.js';
import type { Intake } from './intake/accept.js';
import { freeSpaceProbe } from './intake/free-space.js';
import { installationId } from './intake/loop.js';
import { ParseAndStore } from './mime/parse-and-store.js';
import { forcedPlanner } from './routing/forced-route.js';
import { Planner } from './routing/plan.js';
import type { Router } from './routing/router.js';
import { DSN_ROUTE, keepOutbound } from './delivery/keep-outbound.js';
import { DeliveryQueue } from './delivery/queue.js';
import { DeliveryWorker } from './delivery/worker.js';
import { OUTBOUND_ROUTE } from './outbound/compose.js';
import { createDsnTarget } from './outbound/send-dsn.js';
import { createOutboundTarget } from './outbound/send.js';
import { Pipeline } from './pipeline.js';
import { migrate, openDb, type Db } from './store/db.js';
import { openLeases } from './store/leases.js';
import { countRawByStatus } from './store/messages.js';
import { openBlobStore } from './store/open-blobs.js';
import type { BlobStore } from './store/ports.js';
import { Sweeper } from './store/sweep.js';
import { createLogger, type Logger } from './telemetry/log.js';
import { createMetrics, type Metrics } from './telemetry/metrics.js';

/** A whole Postroom, built from a config; tests build one in-process on temp dirs and free ports. */
export interface Postroom {
  config: Config;
  db: Db;
  blobs: BlobStore;
  intake: Intake;
  log: Logger;
  metrics: Metrics;
  apiToken: string;
  smtp?: SmtpIngress;
  /** The HTTP API server (tests use `.api(path)` on TestPostroom for requests). */
  apiServer?: ApiServer;
  parser: ParseAndStore;
  router: Router;
  queue: DeliveryQueue;
  deliveryWorker: DeliveryWorker;
  /** Seals and opens mail-account passwords (secretKey). */
  box: SecretBox;
  /** Removes orphan blobs and staging leftovers (at start, then every store.sweep.interval). */
  sweeper: Sweeper;
  /** Watches enabled folders of mail accounts (absent with mail.fetch: false). */
  fetcher?: FetchScheduler;
  /** Where the listeners are bound (ports resolved when 0 was asked for). */
  addresses: { smtp?: { host: string; port: number }; http?: { host: string; port: number } };
  stop(): Promise<void>;
}

/** The API token: from config/env, else generated once into DATA_DIR/api-token (mode 0600). */
export function resolveApiToken(config: Config): string {
  if (config.http.apiToken) return config.http.apiToken;
  const file = path.join(config.dataDir, 'api-token');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    makeDirsSync(config.dataDir);
    const token = randomBytes(24).toString('base64url');
    writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
    return token;
  }
}

/** One line at start when forward routes would bounce but no relay can carry the DSNs. */
function warnIfDsnsCannotLeave(config: Config, log: Logger): void {
  if (config.groups.relay) return;
  const routes = config.routes
    .filter((r) => r.deliver.some((d) => d.kind === 'forward' && (d.params as { dsn?: boolean }).dsn !== false))
    .map((r) => r.name);
  if (routes.length) log.warn({ routes }, 'groups.relay is not set: DSNs of forward routes are kept but wait (4.3.5) until it is');
}

/** Build and start a Postroom: store, migrations, intake, parser, SMTP and HTTP listeners. */
export async function startPostroom(config: Config, opts: { log?: Logger; /** DNS for sender authentication instead of the system's. */ dnsLookup?: DnsLookup } = {}): Promise<Postroom> {
  const log = opts.log ?? createLogger(config.log.level, { file: config.log.file });
  const metrics = createMetrics();
  makeDirsSync(config.dataDir);
  const db = openDb(config.store.database, config.dataDir, {
    poolSize: config.store.poolSize,
    statementTimeout: config.store.statementTimeout,
    onError: (err) => log.warn({ err }, 'database trouble (a lost pooled connection is reopened; a failed checkpoint thread hands back to SQLite)'),
    backgroundCheckpoints: true,
    readThread: true,
  });
  await migrate(db);
  metrics.countRawWith(() => countRawByStatus(db.kysely));
  const blobs = openBlobStore(config, db);
  // Leftovers of faults (orphan blobs, staging files of dead processes): at start, then periodically.
  const sweeper = new Sweeper({ db: db.kysely, blobs, log, metrics, graceMs: config.store.sweep.grace, intervalMs: config.store.sweep.interval });
  sweeper.start();
  const hostname = config.smtp.hostname ?? os.hostname();
  // Mail accounts: passwords sealed with secretKey; messages created through the API are sent
  // by the `outbound` target through their account's SMTP server. DSNs the forward target keeps
  // leave through groups.relay, the one outbound relay configured.
  const box = secretBox(resolveSecret(config.secretKey, config.dataDir));
  warnIfDsnsCannotLeave(config, log);
  const { intake, targets, router, recipientCheck, resolveList, authPolicy } = assembleDoor(config, {
    db,
    blobs,
    log,
    metrics,
    installation: installationId(config.secretKey, config.dataDir, resolveSecret),
    commitWindowMs: config.store.commitWindow,
    dnsLookup: opts.dnsLookup,
    extraTargets: [
      ['outbound', createOutboundTarget({ db, box })],
      ['dsn', createDsnTarget({ relay: config.groups.relay })],
    ],
  });
  const parser = new ParseAndStore({ db, blobs, log, metrics, config: config.parse, pollInterval: config.parse.pollInterval });
  const queue = new DeliveryQueue(db);
  const deliveryWorker: DeliveryWorker = new DeliveryWorker({
    db,
    blobs,
    log,
    metrics,
    targets,
    config: config.delivery,
    retryPolicy: (route) =>
      route === DSN_ROUTE ? DEFAULT_RETRY : (route === OUTBOUND_ROUTE && config.mail.outboundRetry) || router.retryPolicy(route),
    publicUrl: config.http.publicUrl,
    keepOutbound: keepOutbound({ db, blobs, onQueued: () => deliveryWorker.wake() }),
  });
  const planner = new Planner({ db, blobs, router, log, forced: forcedPlanner({ db, routes: router.routes, targets, log }) });
  const noDedup = new Set(config.routes.filter((r) => !r.dedup).map((r) => r.name));
  const pipeline = new Pipeline({
    intake,
    parser,
    planner,
    queue,
    worker: deliveryWorker,
    log,
    dedup: { windowMs: config.delivery.dedupWindow, enabled: (route) => !noDedup.has(route) },
  });
  await pipeline.start();

  const apiToken = resolveApiToken(config);
  const app: Postroom = {
    config,
    db,
    blobs,
    intake,
    log,
    metrics,
    apiToken,
    parser,
    router,
    queue,
    deliveryWorker,
    box,
    sweeper,
    addresses: {},
    async stop() {
      await app.fetcher?.stop();
      await app.smtp?.close();
      await app.apiServer?.close();
      await intake.close();
      await pipeline.stop();
      await sweeper.stop();
      await db.close();
    },
  };
  try {
    if (config.smtp.enabled) {
      // Where bytes land: the data directory, file blobs and their temp dir, database blobs' staging.
      const freeSpace = freeSpaceProbe([config.dataDir, path.join(config.dataDir, 'blobs', 'tmp'), path.join(config.dataDir, 'staging')]);
      const routeClients = config.routes.flatMap((r) => r.match.clients ?? []);
      app.smtp = createSmtpIngress({ config: config.smtp, hostname, accept: intake.accept, recipientCheck, log, metrics, freeSpace, routeClients, authPolicy });
      app.addresses.smtp = await app.smtp.listen();
    }
    if (config.http.enabled) {
      app.apiServer = await createApiServer({
        config: config.http,
        db,
        blobs,
        log,
        metrics,
        token: apiToken,
        objects: config.objects,
        onDeliveryRetry: () => deliveryWorker.wake(),
        router,
        listeners: () =>
          Object.entries(app.addresses).map(([kind, a]) => ({ kind, address: `${a.host}:${a.port}` })),
        onStored: (listener) => {
          const on = (m: { id: string }) => listener(m.id);
          intake.on('stored', on);
          return () => void intake.off('stored', on);
        },
        // POST /api/v1/inbound: the same door and the same RCPT-time checks as SMTP.
        intake: {
          accept: intake.accept,
          recipientCheck,
          requireMessageId: config.smtp.requireMessageId,
          trace: config.smtp.traceHeader,
          resolveList,
        },
        mail: { box, config: config.mail, hostname, refresh: () => void app.fetcher?.refresh(), wake: () => deliveryWorker.wake() },
      });
      app.addresses.http = await app.apiServer.listen();
    }
    if (config.mail.fetch) {
      // Each enabled folder under its lease: one node polls a mailbox at a time.
      app.fetcher = new FetchScheduler({ db, box, accept: intake.accept, log, metrics, config: config.mail, leases: openLeases(db) });
      await app.fetcher.start();
    }
  } catch (err) {
    await app.stop().catch(() => {});
    throw err;
  }
  return app;
}
