import type { Command } from '../command.js';
import { checkConfig } from './check-config.js';
import { deliveriesCmd } from './deliveries.js';
import { deliverCmd } from './deliver.js';
import { fetchCmd } from './fetch.js';
import { hashPasswordCmd } from './hash-password.js';
import { importCmd } from './import.js';
import { exportCmd } from './export.js';
import { messagesCmd } from './messages.js';
import { migrateCmd } from './migrate.js';
import { objectsCmd } from './objects.js';
import { replayCmd } from './replay.js';
import { reindexCmd } from './reindex.js';
import { serve } from './serve.js';
import { trackerCmd } from './tracker.js';
import { tokensCmd, usersCmd } from './users.js';

/** Every command, by name. Add a command: one file here, one line below. */
export const commands = new Map<string, Command>(
  [serve, checkConfig, migrateCmd, hashPasswordCmd, deliveriesCmd, replayCmd, messagesCmd, deliverCmd, importCmd, exportCmd, fetchCmd, objectsCmd, reindexCmd, trackerCmd, usersCmd, tokensCmd].map((c) => [c.name, c]),
);
