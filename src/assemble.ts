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
import { migrate, openDb, type Db } from './store/db.js';
import { blobKind, openBlobStore } from './store/open-blobs.js';
import type { BlobStore } from './store/ports.js';
import { createGroupTarget } from './targets/group.js';
import { bindTargets } from './targets/index.js';
import { createLogger, type Logger } from './telemetry/log.js';
import { createMetrics, type Metrics } from './telemetry/metrics.js';

/** The door mail comes in by and the routing behind it, as `serve` and `postroom deliver` both use them. */
export interface Door {
  intake: Intake;
  /** Every target kind, bound to this store: what the router checks at RCPT time and the worker delivers with. */
  targets: Map<string, Target<any>>;
  router: Router;
  /** The listener's domain check, then the routes' own (RCPT-time), with postmaster@ always taken. */
  recipientCheck: RecipientCheck;
  /** A group id (`-l 12345`) as its address. */
  resolveList(list: string): Promise<string>;
  /** The end-of-DATA refusal of routes' `authFailure: refuse` for a verdict (SMTP). */
  authPolicy: NonNullable<AcceptOptions['authPolicy']>;
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
  const router = createRouter(config.routes, targets);
  return {
    intake,
    targets,
    router,
    recipientCheck: acceptPostmaster(config.smtp.domains, allChecks(domainCheck(config.smtp.domains), router.recipientCheck())),
    resolveList: (list) => resolveList(db.kysely, list),
    authPolicy: (verdict, env) => router.authRefusal(verdict, { mailFrom: env.mailFrom, clientIp: env.clientIp, authUser: env.authUser }, env.rcptTo),
  };
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
  const staging = blobKind(config, db) === 'db' ? mkdtempSync(path.join(os.tmpdir(), 'postroom-deliver-')) : undefined;
  const blobs = openBlobStore(config, db, { stagingDir: staging });
  // The server's key, read only: see installationId.
  const door = assembleDoor(config, { db, blobs, log, metrics: createMetrics(), installation: installationId(config.secretKey, config.dataDir) });
  return {
    intake: door.intake,
    config,
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
