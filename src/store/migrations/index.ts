import type { Migration } from 'kysely';
import { m0001Messages } from './0001-messages.js';
import { m0002Deliveries } from './0002-deliveries.js';
import { m0003Objects } from './0003-objects.js';
import { m0004MailAccounts } from './0004-mail-accounts.js';
import { m0005Tracker } from './0005-tracker.js';
import { m0006Groups } from './0006-groups.js';
import { m0007GroupPostRefs } from './0007-group-post-refs.js';
import { m0008ParseStatus } from './0008-parse-status.js';
import { m0009DeliveryDestinations } from './0009-delivery-destinations.js';
import { m0011PausedTargets } from './0011-paused-targets.js';
import { m0012BlobRefs } from './0012-blob-refs.js';
import { m0013RelayDuplicates } from './0013-relay-duplicates.js';
import { m0014DeliveryRecipients } from './0014-delivery-recipients.js';
import { m0015Users } from './0015-users.js';
import { m0030HealthProbes } from './0030-health-probes.js';
import { m0017ParseDefects } from './0017-parse-defects.js';
import { m0018OneDueIndex } from './0018-one-due-index.js';
import { m0031AuthVerdicts } from './0031-auth-verdicts.js';
import { m0023FetchDeliver } from './0023-fetch-deliver.js';
import { m0024SearchIndex } from './0024-search-index.js';
import { m0025Retention } from './0025-retention.js';
import { m0026Import } from './0026-import.js';
import { m0027ApiRoutes } from './0027-api-routes.js';

/**
 * Versioned migrations, applied in key order at start and by `postroom migrate`.
 * Rules (docs/migrations.md): never edit a migration that has shipped; add a new one. Each
 * must run on SQLite and PostgreSQL alike: schema-builder types only, no dialect SQL. A new
 * one takes a number above every existing one: Kysely refuses to start a store that has
 * applied a migration sorting after one it has not (unordered migrations stay off, so a gap
 * left by an old branch is never filled later).
 */
export const migrations: Record<string, Migration> = {
  '0001-messages': m0001Messages,
  '0002-deliveries': m0002Deliveries,
  '0003-objects': m0003Objects,
  '0004-mail-accounts': m0004MailAccounts,
  '0005-tracker': m0005Tracker,
  '0006-groups': m0006Groups,
  '0007-group-post-refs': m0007GroupPostRefs,
  '0008-parse-status': m0008ParseStatus,
  '0009-delivery-destinations': m0009DeliveryDestinations,
  '0011-paused-targets': m0011PausedTargets,
  '0012-blob-refs': m0012BlobRefs,
  '0013-relay-duplicates': m0013RelayDuplicates,
  '0014-delivery-recipients': m0014DeliveryRecipients,
  '0015-users': m0015Users,
  '0017-parse-defects': m0017ParseDefects,
  '0018-one-due-index': m0018OneDueIndex,
  '0023-fetch-deliver': m0023FetchDeliver,
  '0024-search-index': m0024SearchIndex,
  '0025-retention': m0025Retention,
  '0026-import': m0026Import,
  '0027-api-routes': m0027ApiRoutes,
  '0030-health-probes': m0030HealthProbes,
  '0031-auth-verdicts': m0031AuthVerdicts,
};
