import { mkdirSync, statSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { mailError, type MailError } from './errors.js';

/**
 * `mkdir -p` that fails instead of spinning. Node 20's `mkdir(dir, { recursive: true })` loops
 * for ever, at 100 % CPU, when a parent exists but refuses the child with ENOENT (any path
 * under /proc): a `postroom deliver` with such a dataDir spun until the MTA's command time
 * limit. Here each level is created once, and a level that still fails once its parent exists
 * is an error: a configuration error (4.3.5, the MTA keeps the mail), or 4.3.1 when the disk is full.
 */
export async function makeDirs(dir: string, mode?: number): Promise<void> {
  for (const d of levelsToMake(path.resolve(dir))) {
    try {
      await mkdir(d, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw dirError(dir, d, err);
      const st = await stat(d).catch((e: unknown) => {
        throw dirError(dir, d, e);
      });
      if (!st.isDirectory()) throw dirError(dir, d, Object.assign(new Error('exists and is not a directory'), { code: 'ENOTDIR' }));
    }
  }
}

/** makeDirs for synchronous start-up code (opening a SQLite file, the API token). */
export function makeDirsSync(dir: string, mode?: number): void {
  for (const d of levelsToMake(path.resolve(dir))) {
    try {
      mkdirSync(d, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw dirError(dir, d, err);
      let st;
      try {
        st = statSync(d);
      } catch (e) {
        throw dirError(dir, d, e);
      }
      if (!st.isDirectory()) throw dirError(dir, d, Object.assign(new Error('exists and is not a directory'), { code: 'ENOTDIR' }));
    }
  }
}

/**
 * The directories from the deepest existing ancestor down to `dir`, found without creating
 * anything: each level is then created exactly once, parent first, so the loop is bounded by
 * the depth of the path whatever the file system answers.
 */
function levelsToMake(dir: string): string[] {
  const levels: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    levels.unshift(d);
    if (existsDir(d) || path.dirname(d) === d) break;
  }
  return levels;
}

function existsDir(d: string): boolean {
  try {
    return statSync(d).isDirectory();
  } catch {
    return false;
  }
}

function dirError(dir: string, level: string, err: unknown): MailError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = level === path.resolve(dir) ? (err as Error).message : `${level}: ${(err as Error).message}`;
  if (code === 'ENOSPC' || code === 'EDQUOT') return mailError('STORE_FULL', `Cannot create directory ${dir} (${why}); try again later`, { cause: err });
  return mailError('CONFIG', `Cannot create directory ${dir} (${why}): check dataDir and the paths in the config`, { cause: err });
}
