import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SPOOL_NAME_MAX } from '../../src/targets/spool-files.js';
import { sanitiseFilename } from '../../src/mime/filename.js';
import { spoolNames } from '../helpers/spool.js';

// Attachment names are the sender's: any length, any Unicode. Whatever they are, the spool
// writes a whole set (message, attachment, control file) whose every name fits NAME_MAX bytes,
// is valid UTF-8 (no character split) and keeps a short extension.
describe('spool file names, for any name a sender chooses (fast-check)', { timeout: 120_000 }, () => {
  it('a real write always succeeds with a .ctl, every name at most 255 bytes, extension kept', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'spool-prop-'));
    let n = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.string({ unit: 'binary', maxLength: 600 }),
          fc.constantFrom('', '.pdf', '.tar.gz', '.文書', '.😀'),
          async (stem, ext) => {
            const dir = path.join(root, String(n++));
            const filename = stem + ext;
            const names = await spoolNames(dir, filename, `d${n}`);
            assert.equal(names.length, 3, names.join('\n'));
            assert.ok(names.some((x) => x.endsWith('.ctl')));
            for (const x of names) {
              assert.ok(Buffer.byteLength(x) <= SPOOL_NAME_MAX, `${Buffer.byteLength(x)} bytes`);
              assert.equal(Buffer.from(x, 'utf8').toString('utf8'), x, 'valid UTF-8');
              assert.ok(!/[\ud800-\udfff]/.test(x.replace(/[\ud800-\udbff][\udc00-\udfff]/g, '')), 'no lone surrogate');
            }
            // The extension survives when the sanitised name had a short one.
            const clean = sanitiseFilename(filename, { maxLength: 200, index: 1, contentType: 'application/pdf' });
            const cleanExt = path.extname(clean);
            const att = names.find((x) => x.includes('.1.'))!;
            if (cleanExt && Buffer.byteLength(cleanExt) <= 16) assert.ok(att.endsWith(cleanExt), `${att} keeps ${cleanExt}`);
            rmSync(dir, { recursive: true, force: true });
          },
        ),
        { numRuns: 150 },
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
