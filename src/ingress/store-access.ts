import { accessSync, constants, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/schema.js';
import { mailError } from '../core/errors.js';
import { isPostgresUrl } from '../store/db.js';
import { blobKind } from '../store/open-blobs.js';

/**
 * What `postroom deliver` must be able to write to keep mail in a store on this host: on
 * SQLite the database file, its -wal and -shm and the directory they are created in; the blob
 * directories when blobs are files. Postfix runs the pipe as its own `user=`, with umask 077,
 * so a store made by another user (a serve running as root, say) is the usual mistake.
 */
function pathsToWrite(config: Config): string[] {
  const out: string[] = [];
  const dialect = isPostgresUrl(config.store.database) ? 'postgres' : 'sqlite';
  if (dialect === 'sqlite') {
    const file = config.store.database ?? path.join(config.dataDir, 'postroom.db');
    out.push(path.dirname(file), file, `${file}-wal`, `${file}-shm`);
  }
  if (blobKind(config, { dialect }) === 'fs') {
    const blobs = path.join(config.dataDir, 'blobs');
    const hex = '0123456789abcdef';
    out.push(blobs, path.join(blobs, 'tmp'), ...[...hex].flatMap((a) => [...hex].map((b) => path.join(blobs, a + b))));
  }
  return out;
}

/**
 * Throw 4.3.5 (the MTA defers; nothing is lost) naming the first existing path this process
 * cannot write, its owner and mode, instead of failing deep in a commit with a bare EACCES or
 * "attempt to write a readonly database". Paths not there yet are created by whoever comes first.
 */
export function checkStoreWritable(config: Config): void {
  for (const p of pathsToWrite(config)) {
    if (!existsSync(p)) continue;
    try {
      accessSync(p, constants.R_OK | constants.W_OK | (statSync(p).isDirectory() ? constants.X_OK : 0));
    } catch {
      const st = statSync(p);
      const me = process.getuid?.() ?? '?';
      throw mailError(
        'CONFIG',
        `Cannot write ${p} (owner uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}) as uid ${me}: ` +
          'run the pipe as the user that runs postroom serve and owns the data directory',
      );
    }
  }
}
