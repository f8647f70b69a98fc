import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { sql } from 'kysely';
import { FsBlobStore, INLINE_LIMIT } from './blobs.js';
import type { Db } from './db.js';
import { DbBlobStore } from './pg-blobs.js';
import type { BlobStore, StagedBlob } from './ports.js';
import { S3BlobStore } from './s3-blobs.js';
import { REFS } from './sweep.js';

/** Hashes read per query. */
const PAGE = 500;

export interface MigrateProgress {
  /** Blobs looked at so far (this run and the runs it resumes). */
  done: number;
  total: number;
  /** Of `done` in this run: copied and verified. */
  copied: number;
  /** Bytes copied in this run. */
  bytes: number;
  /** Of `done` in this run: already where the target keeps them (the database they share, an earlier run). */
  present: number;
}

export interface MigrateOptions {
  /** Where the last hash done is recorded, so a killed run continues after it; removed when the run completes. */
  cursorFile: string;
  onProgress?: (p: MigrateProgress) => void;
}

/**
 * Copy every blob a row names from `from` to `to`, in hash order. Each copy is hashed as it is
 * staged (the bytes read must hash to their name) and read back from where the target keeps it
 * and hashed again before it counts. Resumable: the last hash done is written to `cursorFile`
 * after each copy, and a blob the target already holds (an earlier run, or the small blobs that
 * the fs and s3 stores both keep in the database) is not copied again. Nothing is deleted from
 * `from`: its copies go once the config names the new store and the old ones are not needed.
 */
export async function migrateBlobs(db: Db, from: BlobStore, to: BlobStore, opts: MigrateOptions): Promise<MigrateProgress> {
  const k = db.kysely;
  const inDb = new DbBlobStore(k, '');
  const union = sql.join(
    REFS.map(([table, column]) => sql`select ${sql.ref(column)} as h from ${sql.table(table)} where ${sql.ref(column)} is not null`),
    sql` union `,
  );
  const total = Number((await sql<{ n: string | number }>`select count(*) as n from (${union}) u`.execute(k)).rows[0].n);
  let after = (await readFile(opts.cursorFile, 'utf8').catch(() => '')).trim();
  if (after && !/^[0-9a-f]{64}$/.test(after)) after = '';
  let done = after ? Number((await sql<{ n: string | number }>`select count(*) as n from (${union}) u where h <= ${after}`.execute(k)).rows[0].n) : 0;
  const p: MigrateProgress = { done, total, copied: 0, bytes: 0, present: 0 };
  for (;;) {
    const page = (await sql<{ h: string }>`select h from (${union}) u where h > ${after} order by h limit ${PAGE}`.execute(k)).rows.map((r) => r.h);
    if (!page.length) break;
    for (const sha256 of page) {
      if (await holds(to, inDb, sha256)) {
        p.present++;
      } else {
        p.bytes += await copy(from, to, inDb, sha256);
        p.copied++;
      }
      after = sha256;
      p.done = ++done;
      // Written aside and renamed: a kill mid-write leaves the previous cursor, never half of one.
      await writeFile(`${opts.cursorFile}.tmp`, after);
      await rename(`${opts.cursorFile}.tmp`, opts.cursorFile);
      opts.onProgress?.({ ...p, total: Math.max(total, done) });
    }
  }
  await unlink(opts.cursorFile).catch(() => {});
  return { ...p, total: Math.max(total, done) };
}

/** Whether `to` already keeps the blob where it reads it from. */
async function holds(to: BlobStore, inDb: DbBlobStore, sha256: string): Promise<boolean> {
  const row = await inDb.size(sha256);
  if (to instanceof DbBlobStore) return row !== undefined;
  // The fs and s3 stores keep blobs up to INLINE_LIMIT in the database, the same tables.
  if (row !== undefined && row <= INLINE_LIMIT) return true;
  if (to instanceof S3BlobStore) return to.hasObject(sha256);
  if (to instanceof FsBlobStore) return to.hasFile(sha256);
  return to.has(sha256);
}

/** Copy one blob and verify it; returns its size. */
async function copy(from: BlobStore, to: BlobStore, inDb: DbBlobStore, sha256: string): Promise<number> {
  // `sha256` is not passed to stage: the bytes are hashed as they are read, so a source that
  // lost or changed bytes is caught before anything is written under the name.
  let staged: StagedBlob;
  try {
    staged = await to.stage(await from.open(sha256));
  } catch (err) {
    throw new Error(`blob ${sha256}: reading it from the current store failed: ${(err as Error).message}`, { cause: err });
  }
  if (staged.sha256 !== sha256) {
    await to.discard(staged);
    throw new Error(`blob ${sha256} is damaged in the current store: its bytes hash to ${staged.sha256}`);
  }
  try {
    const rest = await to.settle([staged]);
    if (rest.length) await to.commit(rest, inDb.db);
  } catch (err) {
    await to.discard(staged);
    throw err;
  }
  const back = await hashOf(await openKept(to, inDb, staged));
  if (back !== sha256) throw new Error(`blob ${sha256}: the copy in the target store hashes to ${back}`);
  return staged.size;
}

/** Read a blob back from where the target keeps this copy (not from a copy elsewhere). */
function openKept(to: BlobStore, inDb: DbBlobStore, staged: StagedBlob): Promise<Readable> {
  if (staged.data || to instanceof DbBlobStore) return inDb.open(staged.sha256);
  if (to instanceof S3BlobStore) return to.openObject(staged.sha256);
  if (to instanceof FsBlobStore) return Promise.resolve(createReadStream(to.pathOf(staged.sha256)));
  return to.open(staged.sha256);
}

async function hashOf(s: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const c of s) h.update(c as Buffer);
  return h.digest('hex');
}
