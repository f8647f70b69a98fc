import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Config } from './config/schema.js';
import type { Target } from './core/delivery.js';
import type { RecipientCheck } from './core/message.js';
import { resolveList } from './domain/groups/store.js';
import type { LocalIntake } from './ingress/pipe.js';
import { checkStoreWritable } from './ingress/store-access.js';
import { Intake, type AcceptOptions } from './intake/accept.js';
import { installationId } from './intake/loop.js';
import { intakeAuth } from './intake/auth-setup.js';
import type { DnsLookup } from './net/dns-cache.js';
import { acceptPostmaster, allChecks, domainCheck, postmasterOf } from './intake/recipients.js';
import { createRouter, type Router } from './routing/router.js';
import type { RouteSource } from './routing/live.js';
import type { Route } from './routing/schema.js';
import { problemsOf } from './config/load.js';
import { routeSchema } from './config/schema.js';
import { OBJECT_ROUTE_NAMES } from './domain/objects/config.js';
import { apiRoutesVersion, listApiRoutes } from './store/api-routes.js';
import { migrate, openDb, type Db } from './store/db.js';
import { blobKind, openBlobStore } from './store/open-blobs.js';
import type { BlobStore } from './store/ports.js';
import { createGroupTarget } from './targets/group.js';
import { bindTargets } from './targets/index.js';
import { createLogger, type Logger } from './telemetry/log.js';
import { createMetrics, type Metrics } from './telemetry/metrics.js';

/** The door mail comes in by and the routing behind it, as `serve`, `postroom deliver` and `postroom import` use them. */
export interface Door {
  intake: Intake;
  /** Every target kind, bound to this store: what the router checks at RCPT time and the worker delivers with. */
  targets: Map<string, Target<any>>;
  router: Router;
  /** The listener's domain check, then the routes' own (RCPT-time), with postmaster@ always taken. */
  recipientCheck: RecipientCheck;
  /** The same checks with another router (one routing generation, routing/live.ts). */
  checkFor(router: Router): RecipientCheck;
  /** Build a router of the file's routes and the API's behind them, with this door's targets. */
  routerOf(fileRoutes: readonly Route[], apiRoutes: readonly Route[]): Router;
  /** A group id (`-l 12345`) as its address. */
  resolveList(list: string): Promise<string>;
  /** The end-of-DATA refusal of routes' `authFailure: refuse` for a verdict (SMTP). */
  authPolicy: NonNullable<AcceptOptions['authPolicy']>;
  /** The same refusal by another router (one routing generation, routing/live.ts). */
  authPolicyFor(router: Router): NonNullable<AcceptOptions['authPolicy']>;
}

/**
 * Build the intake and the routing behind it from a config: the one assembly of both, so the
 * server's listeners and `postroom deliver` take and refuse the same recipients. `installation`:
 * this store's id in our Received: headers (intake/loop.ts); `extraTargets`: kinds routes never
 * name but the server's worker delivers (outbound mail, DSNs).
 */
export function assembleDoor(
  config: Config,
  deps: {
    db: Db;
    blobs: BlobStore;
    log: Logger;
    metrics: Metrics;
    installation: string | undefined;
    /** Extra wait to gather messages into one commit; a one-message `postroom deliver` has no use for it. */
    commitWindowMs?: number;
    extraTargets?: Iterable<[string, Target<any>]>;
    /** Routes managed through the API (loadApiRoutes), tried after the file's. */
    apiRoutes?: readonly Route[];
    /** DNS for sender authentication instead of the system's (tests: a fixed zone). */
    dnsLookup?: DnsLookup;
  },
): Door {
  const { db, blobs } = deps;
  const intake = new Intake({
    db,
    blobs,
    log: deps.log,
    metrics: deps.metrics,
    hostname: config.smtp.hostname ?? os.hostname(),
    headerLimit: config.parse.maxHeaderSize,
    commitWindowMs: deps.commitWindowMs,
    loop: { maxReceived: config.smtp.maxReceived, maxPasses: config.smtp.maxPasses, installationId: deps.installation },
    postmaster: config.smtp.postmaster ? { is: postmasterOf(config.smtp.domains), alias: config.smtp.postmaster } : undefined,
    auth: intakeAuth(config.auth, config.smtp.hostname ?? os.hostname(), deps.dnsLookup),
  });
  // Folder, workflow and work-package targets reach the object store through their bound deps;
  // their RCPT-time checks (a folder exists, `network` may write to it) need it too.
  const targets = bindTargets({ db, blobs, headers: config.objects.headers });
  targets.set('group', createGroupTarget({ db, config: config.groups, publicUrl: config.http.publicUrl }));
  for (const [kind, target] of deps.extraTargets ?? []) targets.set(kind, target);
  const routerOf = (fileRoutes: readonly Route[], apiRoutes: readonly Route[]) => createRouter(fileRoutes, targets, { after: apiRoutes });
  const router = routerOf(config.routes, deps.apiRoutes ?? []);
  const checkFor = (r: Router) => acceptPostmaster(config.smtp.domains, allChecks(domainCheck(config.smtp.domains), r.recipientCheck()));
  const authPolicyFor =
    (r: Router): NonNullable<AcceptOptions['authPolicy']> =>
    (verdict, env) =>
      r.authRefusal(verdict, { mailFrom: env.mailFrom, clientIp: env.clientIp, authUser: env.authUser }, env.rcptTo);
  return {
    intake,
    targets,
    router,
    checkFor,
    routerOf,
    recipientCheck: checkFor(router),
    resolveList: (list) => resolveList(db.kysely, list),
    authPolicy: authPolicyFor(router),
    authPolicyFor,
  };
}

/** The routes managed through the API, as this node applies them. */
export interface ApiRoutes {
  /** The store's change counter when they were read. */
  version: number;
  routes: Route[];
  sources: Map<string, RouteSource>;
}

/** The file's routes as sources (read-only through the API). */
export function fileSources(routes: readonly Route[]): Map<string, RouteSource> {
  return new Map(routes.map((r) => [r.name, { source: 'file' } as RouteSource]));
}

/**
 * Read the routes managed through the API and validate each with the config's route schema
 * (a node of an older version may have written one this one no longer takes). One that does
 * not validate, or whose name a file route has taken since, is left out and logged with its
 * key path: the others still route. Disabled ones are left out, as in the file.
 */
export async function loadApiRoutes(db: Db, fileRoutes: readonly Route[], log: Logger): Promise<ApiRoutes> {
  const version = await apiRoutesVersion(db);
  const taken = new Set<string>([...fileRoutes.map((r) => r.name), ...OBJECT_ROUTE_NAMES]);
  const routes: Route[] = [];
  const sources = new Map<string, RouteSource>();
  for (const row of await listApiRoutes(db)) {
    if (taken.has(row.name)) {
      log.warn({ route: row.name }, 'a route of the config file has the name of a route managed through the API: the file route is used');
      continue;
    }
    const r = routeSchema.safeParse(row.definition);
    if (!r.success) {
      log.error({ route: row.name, version: row.version, problems: problemsOf(r.error) }, 'a route managed through the API does not validate: left out');
      continue;
    }
    if (!r.data.enabled) continue;
    routes.push(r.data);
    sources.set(row.name, { source: 'api', version: row.version, updatedBy: row.updatedBy, updatedAt: row.updatedAt });
  }
  return { version, routes, sources };
}

/**
 * Open the configured store (SQLite or PostgreSQL) and its intake, with the same RCPT-time
 * checks the SMTP listener runs. A `postroom serve` may be running on the same store at the
 * same time: SQLite's WAL and busy_timeout serialise the writes, blobs are staged under unique
 * names, and the server's parse step finds the new row at its next sweep. The MTA runs us as
 * a user of its own: a store that user cannot write is a configuration error (4.3.5, deferred).
 */
export async function openLocalIntake(config: Config): Promise<LocalIntake> {
  // No log lines: pipe(8) takes everything we print as the bounce text; the status line is ours.
  const log = createLogger('silent');
  checkStoreWritable(config);
  const db = openDb(config.store.database, config.dataDir, { poolSize: 2, statementTimeout: config.store.statementTimeout });
  try {
    await migrate(db);
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
  // Bytes bound for the database wait in a directory of this run's own (not fsynced: the commit
  // is what keeps them), so on PostgreSQL the pipe's user needs the database URL, not DATA_DIR.
  const staging = blobKind(config, db) !== 'fs' ? mkdtempSync(path.join(os.tmpdir(), 'postroom-deliver-')) : undefined;
  const blobs = openBlobStore(config, db, { stagingDir: staging });
  // The server's key, read only: see installationId.
  // The routes managed through the API too: the RCPT-time checks must take what they take.
  const apiRoutes = await loadApiRoutes(db, config.routes, log).catch(async (err: unknown) => {
    await db.close().catch(() => {});
    if (staging) rmSync(staging, { recursive: true, force: true });
    throw err;
  });
  const door = assembleDoor(config, {
    db,
    blobs,
    log,
    metrics: createMetrics(),
    installation: installationId(config.secretKey, config.dataDir),
    apiRoutes: apiRoutes.routes,
  });
  return {
    intake: door.intake,
    config,
    db,
    recipientCheck: door.recipientCheck,
    resolveList: door.resolveList,
    async close() {
      try {
        await door.intake.close();
        await db.close();
      } finally {
        if (staging) rmSync(staging, { recursive: true, force: true });
      }
    },
  };
}
