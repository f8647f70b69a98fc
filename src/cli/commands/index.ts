import type { Command } from '../command.js';
import { checkConfig } from './check-config.js';
import { deliveriesCmd } from './deliveries.js';
import { deliverCmd } from './deliver.js';
import { fetchCmd } from './fetch.js';
import { hashPasswordCmd } from './hash-password.js';
import { importCmd } from './import.js';
import { exportCmd } from './export.js';
import { initCmd } from './init.js';
import { messagesCmd } from './messages.js';
import { migrateCmd } from './migrate.js';
import { migrateBlobsCmd } from './migrate-blobs.js';
import { objectsCmd } from './objects.js';
import { replayCmd } from './replay.js';
import { purgeCmd } from './purge.js';
import { reindexCmd } from './reindex.js';
import { reloadCmd } from './reload.js';
import { serve } from './serve.js';
import { trackerCmd } from './tracker.js';
import { tokensCmd, usersCmd } from './users.js';

/** Every command, by name. Add a command: one file here, one line below. */
export const commands = new Map<string, Command>(
  [serve, initCmd, reloadCmd, checkConfig, migrateCmd, migrateBlobsCmd, hashPasswordCmd, deliveriesCmd, replayCmd, messagesCmd, deliverCmd, importCmd, exportCmd, fetchCmd, objectsCmd, purgeCmd, reindexCmd, trackerCmd, usersCmd, tokensCmd].map((c) => [c.name, c]),
);
