import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MailError } from '../../src/core/errors.js';
import { SPOOL_NAME_MAX } from '../../src/targets/spool-files.js';
import { createSpoolTarget, spoolError, spoolParams } from '../../src/targets/spool.js';
import { ctx, spoolNames, withAttachment } from '../helpers/spool.js';
import { tempDir } from '../helpers/env.js';

const spool = createSpoolTarget();

describe('spool file names: cut to the file system\'s limit in UTF-8 bytes, extension kept', () => {
  let tmp: ReturnType<typeof tempDir>;
  before(() => (tmp = tempDir('spool-names-')));
  after(() => tmp.cleanup());

  // Names the sanitiser already let through at parse time (maxFilenameLength up to 255), which
  // with our prefix and message id came to more than NAME_MAX: ENAMETOOLONG, retried until dead.
  const table: [string, string, RegExp][] = [
    ['230 ASCII characters', `${'a'.repeat(226)}.pdf`, /\.1\.a+\.pdf$/],
    ['230 three-byte characters (690 bytes)', `${'文'.repeat(226)}.pdf`, /\.1\.文+\.pdf$/],
    ['four-byte characters (emoji) cut between, never inside', `${'😀'.repeat(100)}.pdf`, /\.1\.(😀)+\.pdf$/],
    ['a combining accent at the cut', `${'é'.repeat(200)}.pdf`, /\.1\.(e\u0301|é)+\.pdf$/u],
    ['an extension too long to be one', `report.${'x'.repeat(240)}`, /\.1\.report\.x+$/],
    ['a short name, untouched', 'order.pdf', /\.1\.order\.pdf$/],
  ];
  for (const [what, filename, shape] of table) {
    it(`${what}: written, every name at most 255 bytes, a control file beside it`, async () => {
      const dir = path.join(tmp.dir, what.replace(/\W+/g, '-'));
      const names = await spoolNames(dir, filename);
      assert.equal(names.length, 3, names.join('\n'));
      for (const n of names) assert.ok(Buffer.byteLength(n) <= SPOOL_NAME_MAX, `${Buffer.byteLength(n)} bytes: ${n}`);
      const att = names.find((n) => n.includes('.1.'))!;
      assert.match(att, shape);
      assert.ok(!att.includes('\ufffd'), 'no character split');
      assert.ok(names.some((n) => n.endsWith('.ctl')) && names.some((n) => n.endsWith('.txt')));
    });
  }

  it('a pair that cannot be completed leaves nothing behind (the control file\'s place is taken)', async () => {
    const dir = path.join(tmp.dir, 'half');
    mkdirSync(dir);
    const msg = withAttachment('order.pdf');
    const p = spoolParams.parse({ dir, format: 'txt', attachments: true, control: { a: 'b' } });
    // A first, successful write tells us the names; then the control file's name becomes a directory.
    await spool.deliver(msg, p, ctx('once'));
    const ctl = readdirSync(dir).find((n) => n.endsWith('.ctl'))!;
    for (const n of readdirSync(dir)) rmSync(path.join(dir, n));
    mkdirSync(path.join(dir, ctl));
    writeFileSync(path.join(dir, ctl, 'in-the-way'), '');
    await assert.rejects(spool.deliver(msg, p, ctx('once')), (e: unknown) => e instanceof MailError && e.status === '4.3.5');
    assert.deepEqual(readdirSync(dir), [ctl], 'no .txt, no attachment, no temporary file');
  });

  it('failures by errno: permanent when no retry can succeed, transient when time or an operator fixes it', () => {
    const errno = (code: string) => spoolError(Object.assign(new Error(`${code}: x`), { code }));
    const cases: [string, string, string][] = [
      ['ENAMETOOLONG', 'permanent', '5.3.0'],
      ['EINVAL', 'permanent', '5.3.0'],
      ['EILSEQ', 'permanent', '5.3.0'],
      ['EFBIG', 'permanent', '5.3.0'],
      ['ENOSPC', 'transient', '4.3.1'],
      ['EDQUOT', 'transient', '4.3.1'],
      ['EACCES', 'transient', '4.3.5'],
      ['EROFS', 'transient', '4.3.5'],
      ['EISDIR', 'transient', '4.3.5'],
      ['EIO', 'transient', '4.4.1'],
      ['EMFILE', 'transient', '4.4.1'],
    ];
    for (const [code, disposition, status] of cases) {
      const e = errno(code);
      assert.deepEqual([code, e.disposition, e.status], [code, disposition, status]);
    }
  });
});
