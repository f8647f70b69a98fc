import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requirePeer, tempDir, waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { swaks } from '../helpers/swaks.js';

/**
 * A sender-chosen 230-character attachment name through SMTP (swaks) into a spool route with a
 * prefix: the name plus prefix and message id came to more than the file system's 255 bytes,
 * ENAMETOOLONG was taken as transient, retried until dead, and a `.txt` was left without its
 * `.ctl`. Now the name is cut (in UTF-8 bytes, extension kept) and the set is written whole.
 */
describe('spool route, 230-character attachment names sent with swaks', { timeout: 120_000 }, () => {
  let app: TestPostroom;
  const tmp = tempDir('spool-long-');
  const spool = path.join(tmp.dir, 'out');

  before(async () => {
    app = await startTestPostroom({
      // The largest name the parser keeps, so the whole 230 characters reach the spool target.
      parse: { maxFilenameLength: 255 },
      routes: [
        {
          name: 'fax',
          match: { recipient: '*@fax' },
          deliver: [{ spool: { dir: spool, format: 'txt', attachments: true, prefix: `FAX_${'p'.repeat(40)}`, control: { files: '<%attachmentFiles%>' } } }],
        },
      ],
    });
  });
  const files = () => {
    try {
      return readdirSync(spool);
    } catch {
      return [];
    }
  };
  after(async () => {
    await app?.close();
    tmp.cleanup();
  });

  for (const [what, name] of [
    ['ASCII', `${'a'.repeat(226)}.pdf`],
    ['Czech (two bytes a character)', `${'ž'.repeat(226)}.pdf`],
  ] as const) {
    it(`${what}: .txt, the attachment and the .ctl, every name within 255 bytes, the .pdf kept`, async (t) => {
      if (!requirePeer(t, 'swaks')) return;
      const body = path.join(tmp.dir, `att-${what.length}.pdf`);
      writeFileSync(body, '%PDF-1.4\n%fake\n');
      const r = await swaks(app.smtpPort, [
        '--from', 'shop@example.org', '--to', `4711-${what.length}@fax`, '--header', `Subject: long ${what}`,
        '--attach-type', 'application/pdf', '--attach-name', name, '--attach', `@${body}`,
      ]);
      assert.equal(r.code, 0, r.out);
      const ctl = await waitFor(
        () => files().find((n) => n.endsWith('.ctl') && readFileSync(path.join(spool, n), 'utf8').includes(name.slice(0, 20))),
        `the .ctl of '${what}'`,
        60_000,
      );
      const base = ctl.slice(0, -'.ctl'.length);
      const set = readdirSync(spool).filter((n) => n.startsWith(base)).sort();
      assert.equal(set.length, 3, set.join('\n'));
      const att = set.find((n) => n.includes('.1.'))!;
      assert.ok(att.endsWith('.pdf'), att);
      for (const n of set) assert.ok(Buffer.byteLength(n) <= 250, `${Buffer.byteLength(n)} bytes: ${n}`);
      assert.equal(readFileSync(path.join(spool, att), 'utf8'), '%PDF-1.4\n%fake\n');
      assert.match(readFileSync(path.join(spool, ctl), 'utf8'), new RegExp(`files=${att.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      assert.deepEqual(readdirSync(spool).filter((n) => n.startsWith('.')), [], 'no temporary file left');
    });
  }
});
