import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../config/schema.js';
import { Intake } from '../intake/accept.js';
import { installationId } from '../intake/loop.js';
import { acceptPostmaster, allChecks, domainCheck, postmasterOf, type RecipientCheck } from '../intake/recipients.js';
import { createRouter } from '../routing/router.js';
import { migrate, openDb, type Db } from '../store/db.js';
import { blobKind, openBlobStore } from '../store/open-blobs.js';
import { bindTargets } from '../targets/index.js';
import { createGroupTarget } from '../targets/group.js';
import { resolveList } from '../domain/groups/store.js';
import { createLogger } from '../telemetry/log.js';
import { createMetrics } from '../telemetry/metrics.js';
import { checkStoreWritable } from './store-access.js';

/** The intake door of a store on this host, opened for one `postroom deliver` run. */
export interface LocalIntake {
  intake: Intake;
  recipientCheck: RecipientCheck;
  /** A group id (`-l 12345`) as its address. */
  resolveList(list: string): Promise<string>;
  config: Config;
  db: Db;
  close(): Promise<void>;
}

/**
 * Open the configured store (SQLite or PostgreSQL) and its intake, with the same RCPT-time
 * checks the SMTP listener runs. A `postroom serve` may be running on the same store at the
 * same time: SQLite's WAL and busy_timeout serialise the writes, blobs are staged under unique
 * names, and the server's parse worker finds the new row at its next sweep. The MTA runs us as
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
  const intake = new Intake({
    db,
    blobs,
    log,
    metrics: createMetrics(),
    hostname: config.smtp.hostname ?? os.hostname(),
    headerLimit: config.parse.maxHeaderSize,
    // The server's key, read only: see installationId.
    loop: { maxReceived: config.smtp.maxReceived, maxPasses: config.smtp.maxPasses, installationId: installationId(config.secretKey, config.dataDir) },
    postmaster: config.smtp.postmaster ? { is: postmasterOf(config.smtp.domains), alias: config.smtp.postmaster } : undefined,
  });
  // The targets' RCPT-time checks (a folder exists, `network` may write to it) need the store.
  const targets = bindTargets({ db, blobs, headers: config.objects.headers });
  targets.set('group', createGroupTarget({ db, config: config.groups }));
  const router = createRouter(config.routes, targets);
  return {
    intake,
    config,
    db,
    recipientCheck: acceptPostmaster(config.smtp.domains, allChecks(domainCheck(config.smtp.domains), router.recipientCheck())),
    resolveList: (list) => resolveList(db.kysely, list),
    async close() {
      try {
        await intake.close();
        await db.close();
      } finally {
        if (staging) rmSync(staging, { recursive: true, force: true });
      }
    },
  };
}
