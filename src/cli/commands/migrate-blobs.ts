import path from 'node:path';
import { parseArgs } from 'node:util';
import { MailError, mailError } from '../../core/errors.js';
import { migrateBlobs, type MigrateProgress } from '../../store/migrate-blobs.js';
import { blobKind, openBlobStore, type BlobKind } from '../../store/open-blobs.js';
import type { Command } from '../command.js';
import { progressPrinter } from '../progress.js';
import { withStore } from '../with-store.js';

const KINDS: readonly BlobKind[] = ['fs', 'db', 's3'];

const USAGE = `usage: postroom migrate-blobs --to s3|fs|db [--config FILE]

Copies every kept blob (raw messages, parts, documents, attachments) from the blob store the
config names now (store.blobs) to another: s3 (the bucket in store.s3; credentials from
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or the AWS SDK's default chain), fs (files under
DATA_DIR/blobs) or db (the database). With fs and s3, blobs up to 128 KiB stay in the database
and are not copied.

Every copy is hashed as it is read and read back from the target and hashed again (sha256)
before it counts. Resumable: killed or failed, run it again and it continues after the last blob
done (DATA_DIR/migrate-blobs-to-KIND.cursor); blobs the target already holds are skipped. The
old copies are left where they are.

Switching: run it while 'postroom serve' runs (it copies the bulk), stop the server, run it
again (it copies what arrived meanwhile), set store.blobs to the target, start the server.
On a terminal it draws a progress bar on stderr; otherwise it prints a line every 10 seconds.
Exit 0 when every blob is in the target; 75 when a store could not be read or written (run it
again); 70 when a blob is damaged (its bytes do not hash to its name: restore it from a backup).`;

export const migrateBlobsCmd: Command = {
  name: 'migrate-blobs',
  summary: 'copy the kept blobs to another blob store (s3, fs, db), verified and resumable',
  usage: USAGE,
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, to: { type: 'string' } } });
    const to = values.to as BlobKind | undefined;
    if (!to || !KINDS.includes(to)) throw mailError('USAGE', `--to must be one of ${KINDS.join(', ')}\n\n${USAGE}`);
    return withStore(values.config, async (db, config) => {
      const current = blobKind(config, db);
      if (current === to) throw mailError('USAGE', `store.blobs is ${to} already: name the store to copy to, then set store.blobs to it`);
      if (to === 's3' && !config.store.s3) throw mailError('USAGE', '--to s3 needs store.s3 (at least a bucket) in the config');
      const from = openBlobStore(config, db);
      const target = openBlobStore(config, db, { kind: to });
      const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
      const printer = progressPrinter<MigrateProgress>(
        process.stderr,
        `migrate-blobs ${current} → ${to}`,
        (p, rate) =>
          `${p.done.toLocaleString('en')} / ${p.total.toLocaleString('en')} blobs, ${p.copied.toLocaleString('en')} copied (${mib(p.bytes)} MiB), ` +
          `${p.present.toLocaleString('en')} there already, ${rate.toLocaleString('en')}/s`,
      );
      let result: MigrateProgress;
      try {
        result = await migrateBlobs(db, from, target, {
          cursorFile: path.join(config.dataDir, `migrate-blobs-to-${to}.cursor`),
          onProgress: (p) => printer.update(p),
        });
      } catch (err) {
        // The catalogue's words are for a mail client; the operator here wants the cause (which
        // bucket, which blob, what the server said). The exit code still comes from the error.
        const cause = (err as Error).cause;
        if (err instanceof MailError && cause instanceof Error) process.stderr.write(`\n${cause.message}\n`);
        process.stderr.write('run it again to continue after the last blob done\n');
        throw err;
      }
      printer.end(result);
      process.stdout.write(`every blob is in ${to} now: set store.blobs: ${to} in the config and restart postroom serve\n`);
      return 0;
    });
  },
};
