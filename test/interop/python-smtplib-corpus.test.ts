import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { dbText } from '../../src/mime/parse.js';
import { requirePeer } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { PYTHON, pythonParts } from '../helpers/python-email.js';

const run = promisify(execFile);
const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/mime');
const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.eml')).sort();
/** Corpus messages our parse limits keep as raw (their bytes must still round-trip). */
const RAW = new Set(['deep-nesting-over.eml', 'huge-header.eml']);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * Sends every file given on argv in one SMTP session with smtplib (a second, independent
 * client), as bytes: smtplib dot-stuffs but does not touch line endings. Prints, per file, the
 * reply to the end of DATA.
 */
const SENDER = String.raw`
import sys, json, smtplib
port = int(sys.argv[1])
out = []
with smtplib.SMTP('127.0.0.1', port, timeout=60) as s:
    s.ehlo('python.example')
    for f in sys.argv[2:]:
        data = open(f, 'rb').read()
        s.mail('sender@example.org')
        code, resp = s.rcpt('rcpt@example.org')
        assert code == 250, (code, resp)
        code, resp = s.data(data)
        out.append({'file': f, 'code': code, 'resp': resp.decode()})
print(json.dumps(out))
`;

interface Reply {
  file: string;
  code: number;
  resp: string;
}

describe('Python smtplib sends the hard-MIME corpus; the API gives back the same bytes', () => {
  let app: TestPostroom;
  const ids = new Map<string, string>();
  before(async () => {
    app = await startTestPostroom();
  });
  after(() => app.close());

  test('every corpus message is accepted with 250 and parsed', async (t) => {
    if (!requirePeer(t, 'python3')) return;
    const { stdout } = await run(PYTHON, ['-c', SENDER, String(app.smtpPort), ...files.map((f) => path.join(FIXTURES, f))], {
      maxBuffer: 16 * 1024 * 1024,
    });
    const replies = JSON.parse(stdout) as Reply[];
    for (const r of replies) {
      assert.equal(r.code, 250, `${r.file}: ${r.resp}`);
      const id = /kept as (\S+)/.exec(r.resp)?.[1];
      assert.ok(id, `${r.file}: message id in "${r.resp}"`);
      ids.set(path.basename(r.file), id);
    }
    assert.equal(ids.size, files.length);
    await app.parser.idle();
  });

  for (const f of files) {
    test(`${f}: /raw is sha256-identical to what was sent; attachments as Python extracts them`, async (t) => {
      if (!requirePeer(t, 'python3')) return;
      const id = ids.get(f);
      assert.ok(id, 'sent by the first test');
      const sent = readFileSync(path.join(FIXTURES, f));

      const exact = await app.api(`/api/v1/messages/${id}/raw?trace=0`);
      assert.equal(exact.status, 200);
      assert.equal(exact.headers.get('content-type'), 'message/rfc822');
      assert.equal(sha(new Uint8Array(await exact.arrayBuffer())), sha(sent), 'bytes without the trace header');

      // With our trace header: one Received: field prepended, then the same bytes.
      const traced = Buffer.from(await (await app.api(`/api/v1/messages/${id}/raw`)).arrayBuffer());
      assert.match(traced.subarray(0, 9).toString('latin1'), /^Received:/);
      const cut = traced.indexOf(sent.subarray(0, 64));
      assert.ok(cut > 0);
      assert.doesNotMatch(traced.subarray(0, cut).toString('latin1'), /\r\n(?![ \t])[^\r\n]/, 'one folded header field');
      assert.equal(sha(traced.subarray(cut)), sha(sent));

      const detail = (await (await app.api(`/api/v1/messages/${id}`)).json()) as { status: string; parseStatus: string };
      const list = (await (await app.api(`/api/v1/messages/${id}/attachments`)).json()) as {
        items: { id: string; filename: string; originalFilename: string | null; contentId: string | null; sha256: string }[];
      };
      if (RAW.has(f)) {
        assert.equal(detail.parseStatus, 'raw');
        assert.deepEqual(list.items, []);
        return;
      }
      assert.equal(detail.status, 'received');
      const ref = await pythonParts(path.join(FIXTURES, f));
      assert.equal(list.items.length, ref.length, 'as many attachments as Python finds');
      for (const [i, py] of ref.entries()) {
        const item = list.items[i];
        assert.equal(item.originalFilename?.trim() ?? null, dbText(py.filename), `part ${i}: original name`);
        assert.equal(item.contentId, py.contentId, `part ${i}: content id`);
        const res = await app.api(`/api/v1/messages/${id}/attachments/${item.id}`);
        assert.equal(res.status, 200);
        const bytes = new Uint8Array(await res.arrayBuffer());
        assert.equal(bytes.length, py.size, `part ${i} (${py.filename}): size`);
        assert.equal(sha(bytes), py.sha256, `part ${i} (${py.filename}): bytes as Python's email package decodes them`);
      }
    });
  }
});
