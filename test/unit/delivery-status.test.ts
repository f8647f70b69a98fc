import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { parseReportFields } from '../../src/mime/delivery-status.js';
import { memoryBlobs } from '../../src/mime/memory-blobs.js';
import { parseStream } from '../../src/mime/parse.js';
import { requirePeer } from '../helpers/env.js';
import { PYTHON } from '../helpers/python-email.js';

const CORPUS = path.resolve(import.meta.dirname, '../fixtures/corpus');
const config = validateConfig({}).parse;

/** Every delivery-status / feedback-report part of a message, as Python's email reads its blocks. */
const READ = String.raw`
import sys, json
from email import policy
from email.parser import BytesParser
m = BytesParser(policy=policy.default).parsebytes(open(sys.argv[1], 'rb').read())
out = []
for p in m.walk():
    ct = p.get_content_type()
    if ct in ('message/delivery-status', 'message/feedback-report'):
        pl = p.get_payload()
        blocks = pl if isinstance(pl, list) else []
        # Python ends a report followed by blank lines with empty blocks: not blocks.
        out.append([d for d in ({k.lower(): str(v).strip() for k, v in b.items()} for b in blocks) if d])
print(json.dumps(out))
`;

describe('report parts (RFC 3464 delivery-status, RFC 5965 feedback-report) read as fields', () => {
  test('a DSN: per-message fields, then one block per recipient', () => {
    const r = parseReportFields(
      'Reporting-MTA: dns; mx.example.org\r\nArrival-Date: Mon, 20 Nov 1995 19:12:08 -0500\r\n\r\nFinal-Recipient: rfc822; a@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such\r\n user\r\n\r\n \r\nFinal-Recipient: rfc822; b@example.com\r\nAction: delayed\r\nStatus: 4.4.1\r\n',
    );
    assert.deepEqual(r.perMessage, { 'Reporting-MTA': 'dns; mx.example.org', 'Arrival-Date': 'Mon, 20 Nov 1995 19:12:08 -0500' });
    assert.deepEqual(r.recipients, [
      { 'Final-Recipient': 'rfc822; a@example.com', Action: 'failed', Status: '5.1.1', 'Diagnostic-Code': 'smtp; 550 5.1.1 no such user' },
      { 'Final-Recipient': 'rfc822; b@example.com', Action: 'delayed', Status: '4.4.1' },
    ]);
  });

  // The corpus' bounces and abuse reports, each report part as Python's email reads it.
  // mimekit--bounce.txt is left out: its delivery-status part is base64, and Python reads the
  // encoded body as fields without decoding it first (RFC 2045 §6.1: the encoding applies to
  // the body of any type); Postroom decodes it, then reads the fields.
  const files = readdirSync(CORPUS).filter(
    (f) => /delivery-status|feedback-report|bounce|delayed|mailbox-full|no-mx|zed|office365|yahoo|aol|gmail/i.test(f) && f !== 'mimekit--bounce.txt',
  );
  for (const f of files) {
    test(`${f}: the same fields as Python`, async (t) => {
      if (!requirePeer(t, 'python3')) return;
      const raw = readFileSync(path.join(CORPUS, f));
      const ref = JSON.parse(spawnSync(PYTHON, ['-c', READ, path.join(CORPUS, f)], { encoding: 'utf8' }).stdout) as Record<string, string>[][];
      const blobs = memoryBlobs(raw);
      const r = await parseStream(await blobs.open(''), { blobs, config }, 'm1');
      const reports = r.save.parts.filter((p) => /^message\/(delivery-status|feedback-report)/.test(p.content_type));
      assert.equal(reports.length, ref.length, 'report parts');
      reports.forEach((p, i) => {
        const fields = parseReportFields(r.staged.find((s) => s.sha256 === p.sha256)!.data!);
        const lower = (o: Record<string, string>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k.toLowerCase(), v]));
        const ours = [fields.perMessage, ...fields.recipients].map(lower);
        // Python keeps the last of a repeated field in dict form; compare the fields both have once.
        assert.equal(ours.length, ref[i].length, `${f}: blocks`);
        ours.forEach((b, j) => {
          for (const [k, v] of Object.entries(ref[i][j])) assert.equal(b[k]?.replace(/\s+/g, ' '), v.replace(/\s+/g, ' '), `${f}: block ${j} ${k}`);
        });
      });
    });
  }
});
