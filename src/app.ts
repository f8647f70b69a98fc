import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import type { Config } from './config/schema.js';
import { makeDirsSync } from './core/make-dirs.js';
import { createMetricsServer, type MetricsServer } from './api/metrics-server.js';
import { createApiServer, type ApiServer } from './api/server.js';
import { assembleDoor, fileSources, loadApiRoutes, type ApiRoutes } from './assemble.js';
import type { Route } from './routing/schema.js';
import { ConfigError, loadConfig } from './config/load.js';
import { configHash, planReload, type ReloadResult } from './config/reload.js';
import { LiveRouter } from './routing/live.js';
import type { DnsLookup } from './net/dns-cache.js';
import { DEFAULT_RETRY } from './config/retry.js';
import { resolveSecret, secretBox, type SecretBox } from './domain/accounts/secret-box.js';
import { FetchScheduler } from './ingress/fetch/scheduler.js';
import { createSmtpIngress, type SmtpIngress } from './ingress/smtp.js';
import { keyPath } from './config/load.js';
import type { Intake } from './intake/accept.js';
import { freeSpaceProbe } from './intake/free-space.js';
import { installationId } from './intake/loop.js';
import { ParseAndStore } from './mime/parse-and-store.js';
import { forcedPlanner } from './routing/forced-route.js';
import { sendOnArrival } from './outbound/send-on-arrival.js';
import { Planner } from './routing/plan.js';
import { DSN_ROUTE, keepOutbound } from './delivery/keep-outbound.js';
import { DeliveryQueue } from './delivery/queue.js';
import { DeliveryWorker } from './delivery/worker.js';
import { OUTBOUND_ROUTE } from './outbound/compose.js';
import { createDsnTarget } from './outbound/send-dsn.js';
import { createOutboundTarget } from './outbound/send.js';
import { Pipeline } from './pipeline.js';
import { migrate, openDb, type Db } from './store/db.js';
import { openLeases } from './store/leases.js';
import { queueGauges } from './store/health.js';
import { countRawByStatus } from './store/messages.js';
import { openBlobStore } from './store/open-blobs.js';
import type { BlobStore } from './store/ports.js';
import { Sweeper } from './store/sweep.js';
import { Retention, type RetentionPolicy } from './store/retention.js';
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
  /** The routes in force (the file's, then the API's), swapped whole by a reload or a route change. */
  router: LiveRouter;
  queue: DeliveryQueue;
  deliveryWorker: DeliveryWorker;
  /** Seals and opens mail-account passwords (secretKey). */
  box: SecretBox;
  /** Removes orphan blobs and staging leftovers (at start, then every store.sweep.interval). */
  sweeper: Sweeper;
  /** Removes messages the retention limits let go (at start, then every retention.interval); undefined when no limit is set. */
  retention?: Retention;
  /** The listener of http.metrics.listen (absent without it). */
  metricsServer?: MetricsServer;
  /** True once stop() has begun (GET /readyz answers 503 from then on). */
  stopping: boolean;
  /** Watches enabled folders of mail accounts (absent with mail.fetch: false). */
  fetcher?: FetchScheduler;
  /** Where the listeners are bound (ports resolved when 0 was asked for). */
  addresses: { smtp?: { host: string; port: number }; http?: { host: string; port: number }; metrics?: { host: string; port: number } };
  /**
   * Read the config file again and apply what may change while running (config/reload.ts) to
   * new sessions; an invalid file changes nothing. SIGHUP, `postroom reload` and POST
   * /api/v1/system/reload all come here.
   */
  reload(): Promise<ReloadResult>;
  /** Read the routes managed through the API again (done by the poll, and after a change made here). */
  refreshRoutes(): Promise<void>;
  stop(): Promise<void>;
}

/** Where the config came from, so that a reload reads the same file with the same environment. */
export interface ConfigOrigin {
  /** The file (`serve --config` or $POSTROOM_CONFIG); absent: defaults only. */
  file?: string;
  env?: NodeJS.ProcessEnv;
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

/** The retention limits of a config: the top-level ones, and each route's own. */
export function retentionPolicy(config: Config, apiRoutes: readonly Route[] = []): RetentionPolicy {
  const { maxAge, maxMessages, maxBytes } = config.retention;
  return {
    defaults: { maxAge, maxMessages, maxBytes },
    routes: Object.fromEntries([...config.routes, ...apiRoutes].filter((r) => r.retention).map((r) => [r.name, { ...r.retention }])),
  };
}

/** Retention for `serve` and `postroom purge`: its own leases (one node at a time on PostgreSQL). */
export function openRetention(config: Config, deps: { db: Db; blobs: BlobStore; metrics?: Metrics; log?: Logger }): Retention {
  return new Retention({
    ...deps,
    leases: openLeases(deps.db),
    policy: retentionPolicy(config),
    batchSize: config.retention.batchSize,
    graceMs: config.store.sweep.grace,
  });
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
export async function startPostroom(config: Config, opts: { log?: Logger; origin?: ConfigOrigin; /** DNS for sender authentication instead of the system's. */ dnsLookup?: DnsLookup } = {}): Promise<Postroom> {
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
  metrics.readQueueWith(() => queueGauges(db));
  const blobs = openBlobStore(config, db);
  // Leftovers of faults (orphan blobs, staging files of dead processes): at start, then periodically.
  const sweeper = new Sweeper({ db: db.kysely, blobs, log, metrics, graceMs: config.store.sweep.grace, intervalMs: config.store.sweep.interval });
  sweeper.start();
  const retention = openRetention(config, { db, blobs, metrics, log });
  const hostname = config.smtp.hostname ?? os.hostname();
  // Mail accounts: passwords sealed with secretKey; messages created through the API are sent
  // by the `outbound` target through their account's SMTP server. DSNs the forward target keeps
  // leave through groups.relay, the one outbound relay configured.
  const box = secretBox(resolveSecret(config.secretKey, config.dataDir));
  warnIfDsnsCannotLeave(config, log);
  let apiRoutes: ApiRoutes = await loadApiRoutes(db, config.routes, log);
  metrics.routesVersion.set(apiRoutes.version);
  const door = assembleDoor(config, {
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
    apiRoutes: apiRoutes.routes,
  });
  const { intake, targets, resolveList } = door;
  const router = new LiveRouter(door.router, new Map([...fileSources(config.routes), ...apiRoutes.sources]));
  // POST /api/v1/inbound asks the routes in force at each call; SMTP sessions keep theirs.
  const recipientCheck = door.checkFor(router);
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
    // A DSN is parsed like any kept message, so it reads through the API as one.
    keepOutbound: keepOutbound({ db, blobs, onQueued: () => deliveryWorker.wake(), onKept: (id) => parser.enqueue(id) }),
  });
  const planner = new Planner({
    db,
    blobs,
    router,
    routerAt: (generation) => router.at(generation)?.router,
    log,
    taken: sendOnArrival({ db, log, wake: () => deliveryWorker.wake() }),
    forced: forcedPlanner({ db, routes: () => router.routes, targets, log }),
  });
  const pipeline = new Pipeline({
    intake,
    parser,
    planner,
    queue,
    worker: deliveryWorker,
    log,
    dedup: { windowMs: config.delivery.dedupWindow, enabled: (route) => router.dedup(route) },
  });
  await pipeline.start();

  const apiToken = resolveApiToken(config);
  // The config in force and its generation; `running` changes only by a whole, valid reload.
  let running = config;
  let generation = 1;
  let hash = configHash(running);
  metrics.configGeneration.set(generation);
  metrics.configInfo.set({ hash }, 1);
  const readPair = (t: { key: string; cert: string }) => ({ key: readFileSync(t.key), cert: readFileSync(t.cert) });
  let smtpTls = config.smtp.enabled && config.smtp.tls ? readPair(config.smtp.tls) : undefined;
  let httpTls = config.http.enabled && config.http.tls ? readPair(config.http.tls) : undefined;
  const samePair = (a?: { key: Buffer; cert: Buffer }, b?: { key: Buffer; cert: Buffer }) =>
    (!a && !b) || (!!a && !!b && a.key.equals(b.key) && a.cert.equals(b.cert));

  /** Build the routes of the running file and the last API routes read, and put them in force for new sessions. */
  function applyRouting(): void {
    const gen = router.swap(door.routerOf(running.routes, apiRoutes.routes), new Map([...fileSources(running.routes), ...apiRoutes.sources]));
    applyRetention();
    app.smtp?.update({
      config: running.smtp,
      recipientCheck: door.checkFor(gen.router),
      routeClients: gen.router.routes.flatMap((r) => r.route.match.clients ?? []),
      routeGeneration: gen.generation,
      tls: smtpTls,
    });
  }

  /**
   * Routes' own limits follow the routes in force (the file's after a reload, the API's); the
   * top-level retention keys and the interval wait for a restart, as reload.ts reports.
   */
  let retentionStarted = false;
  function applyRetention(): void {
    retention.setPolicy(retentionPolicy({ ...config, routes: running.routes }, apiRoutes.routes));
    if (retention.enabled && !retentionStarted) {
      retentionStarted = true;
      retention.start(config.retention.interval);
    }
  }
  applyRetention();

  // One change at a time: a reload and a route poll racing would each build from half the state.
  let serial: Promise<unknown> = Promise.resolve();
  const oneAtATime = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = serial.then(fn, fn);
    serial = p.catch(() => {});
    return p;
  };

  async function refreshRoutes(): Promise<void> {
    const next = await loadApiRoutes(db, running.routes, log);
    if (next.version === apiRoutes.version) return;
    apiRoutes = next;
    applyRouting();
    metrics.routesVersion.set(next.version);
    log.info({ version: next.version, apiRoutes: next.routes.map((r) => r.name), generation: router.current().generation }, 'routes managed through the API reloaded');
  }

  async function reload(): Promise<ReloadResult> {
    const origin = opts.origin ?? {};
    const refused = (problems: string[]): ReloadResult => {
      metrics.configReloads.inc({ result: 'invalid' });
      log.error({ file: origin.file, problems }, 'config reload refused: the running config is kept');
      return { result: 'invalid', generation, hash, applied: [], needsRestart: [], problems };
    };
    // Built from a config object (embedded, tests): reading the defaults instead would drop every route.
    if (!opts.origin) return refused(['(top level): this server was given its config, not a file: there is nothing to read again']);
    let next: Config;
    try {
      next = loadConfig(origin.file, origin.env ?? process.env);
    } catch (e) {
      if (e instanceof ConfigError) return refused(e.problems);
      throw e;
    }
    const plan = planReload(running, next);
    // Certificates are read again even when the file names the same paths: a renewed
    // certificate is the usual reason to reload. A pair that cannot be read or does not match
    // refuses the whole reload, as an invalid key would.
    let nextSmtpTls: typeof smtpTls;
    let nextHttpTls: typeof httpTls;
    const tlsOf = (where: string[], t: { key: string; cert: string } | undefined) => {
      if (!t) return undefined;
      try {
        const pair = readPair(t);
        createSecureContext(pair);
        return pair;
      } catch (e) {
        throw new ConfigError([`${keyPath(where)}: cannot use the certificate and key: ${(e as Error).message}`]);
      }
    };
    try {
      nextSmtpTls = app.smtp ? tlsOf(['smtp', 'tls'], plan.effective.smtp.tls) : undefined;
      nextHttpTls = app.apiServer ? tlsOf(['http', 'tls'], plan.effective.http.tls) : undefined;
    } catch (e) {
      return refused((e as ConfigError).problems);
    }
    const applied = [...plan.applied];
    if (!samePair(smtpTls, nextSmtpTls) && !applied.includes('smtp.tls')) applied.push('smtp.tls');
    if (!samePair(httpTls, nextHttpTls) && !applied.includes('http.tls')) applied.push('http.tls');
    if (plan.needsRestart.length) log.warn({ needsRestart: plan.needsRestart }, 'config changes that take effect only after a restart');
    if (!applied.length) {
      metrics.configReloads.inc({ result: 'unchanged' });
      log.info({ generation, hash, needsRestart: plan.needsRestart }, 'config reloaded: nothing to apply');
      return { result: 'unchanged', generation, hash, applied: [], needsRestart: plan.needsRestart, problems: [] };
    }
    running = plan.effective;
    app.config = running;
    smtpTls = nextSmtpTls;
    if (nextHttpTls && !samePair(httpTls, nextHttpTls)) (app.apiServer?.fastify.server as TlsServer | undefined)?.setSecureContext(nextHttpTls);
    httpTls = nextHttpTls;
    // Routes, limits, allowlists and the certificate: new sessions take them all at once.
    applyRouting();
    generation++;
    metrics.configInfo.reset();
    hash = configHash(running);
    metrics.configInfo.set({ hash }, 1);
    metrics.configGeneration.set(generation);
    metrics.configReloads.inc({ result: 'applied' });
    log.info({ generation, hash, applied, needsRestart: plan.needsRestart, routingGeneration: router.current().generation }, 'config reloaded');
    return { result: 'applied', generation, hash, applied, needsRestart: plan.needsRestart, problems: [] };
  }

  let routesPoll: NodeJS.Timeout | undefined;
  let stopped: Promise<void> | undefined;
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
    retention: retention.enabled ? retention : undefined,
    addresses: {},
    reload: () => oneAtATime(reload),
    refreshRoutes: () => oneAtATime(refreshRoutes),
    stopping: false,
    stop() {
      // Once: a second call (a signal during a stop, a test's cleanup after it stopped the
      // server itself) waits for the same stop instead of closing a closed store.
      return (stopped ??= (async () => {
        // First: /readyz answers 503 while the listeners drain, so a balancer sends no new work here.
        app.stopping = true;
        clearInterval(routesPoll);
        await serial;
        await app.fetcher?.stop();
        await app.smtp?.close();
        await app.apiServer?.close();
        await app.metricsServer?.close();
        await intake.close();
        await pipeline.stop();
        await sweeper.stop();
        await retention.close();
        await db.close();
      })());
    },
  };
  try {
    if (config.smtp.enabled) {
      // Where bytes land: the data directory, file blobs and their temp dir, database blobs' staging.
      const freeSpace = freeSpaceProbe([config.dataDir, path.join(config.dataDir, 'blobs', 'tmp'), path.join(config.dataDir, 'staging')]);
      const gen = router.current();
      const routeClients = gen.router.routes.flatMap((r) => r.route.match.clients ?? []);
      app.smtp = createSmtpIngress({
        config: config.smtp,
        hostname,
        accept: intake.accept,
        recipientCheck: door.checkFor(gen.router),
        routeGeneration: gen.generation,
        log,
        metrics,
        freeSpace,
        routeClients,
        // Routes' authFailure: refuse, as the session's routing generation has them.
        authPolicy: (verdict, env) => door.authPolicyFor((env.routeGeneration !== undefined && router.at(env.routeGeneration)?.router) || router.current().router)(verdict, env),
      });
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
        routing: {
          sources: () => router.current().sources,
          fileRoutes: () => new Set(running.routes.map((r) => r.name)),
          refresh: () => app.refreshRoutes(),
        },
        reload: () => app.reload(),
        listeners: () =>
          Object.entries(app.addresses).map(([kind, a]) => ({ kind, address: `${a.host}:${a.port}` })),
        readiness: {
          node: `${hostname}:${config.http.listen.port}`,
          stopping: () => app.stopping,
          // Every listener the config asks for; one not (yet, or no longer) accepting is not ready.
          listeners: () => [
            ...(config.smtp.enabled ? [{ kind: 'smtp', up: !!app.smtp?.listening() }] : []),
            { kind: 'http', up: !!app.apiServer?.listening() },
            ...(config.http.metrics.listen ? [{ kind: 'metrics', up: !!app.metricsServer?.listening() }] : []),
          ],
        },
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
        mail: {
          box,
          config: config.mail,
          hostname,
          refresh: () => void app.fetcher?.refresh(),
          wake: () => deliveryWorker.wake(),
          parse: (id) => parser.enqueue(id),
        },
      });
      app.addresses.http = await app.apiServer.listen();
    }
    // Routes changed through the API on any node: one indexed row read every few seconds.
    if (config.store.routesPollInterval > 0) {
      routesPoll = setInterval(() => {
        app.refreshRoutes().catch((err: unknown) => log.warn({ err }, 'could not read the routes managed through the API; trying again'));
      }, config.store.routesPollInterval);
      routesPoll.unref();
    }
    if (config.http.metrics.listen) {
      app.metricsServer = createMetricsServer({ listen: config.http.metrics.listen, metrics, log });
      app.addresses.metrics = await app.metricsServer.listen();
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
