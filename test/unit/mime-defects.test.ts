import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { parseMailDate } from '../../src/mime/date.js';
import { memoryBlobs } from '../../src/mime/memory-blobs.js';
import fc from 'fast-check';
import { parseStream, untilClose, type ParseResult } from '../../src/mime/parse.js';
import { compareBoundary } from '../../src/mime/splitter-fixes.js';

const DIR = path.resolve(import.meta.dirname, '../fixtures/mime-defects');
const config = validateConfig({}).parse;

async function parseFile(name: string): Promise<ParseResult> {
  const raw = readFileSync(path.join(DIR, name));
  const blobs = memoryBlobs(raw);
  return parseStream(await blobs.open(''), { blobs, config }, 'm1');
}

/** Each part as [kind, content type, bytes as text]. */
function parts(r: ParseResult): [string, string, string][] {
  return r.save.parts.map((p) => [p.kind, p.content_type, bytesOf(r, p.sha256).toString('utf8')]);
}

function bytesOf(r: ParseResult, sha256: string): Buffer {
  return r.staged.find((s) => s.sha256 === sha256)!.data!;
}

describe('MIME fidelity: the minimal repro of each misparse', () => {
  for (const f of ['1a-padded-first-boundary.eml', '1b-padded-middle-boundary.eml', '1c-padded-close-boundary.eml']) {
    test(`${f}: a delimiter with transport padding is a delimiter (RFC 2046 §5.1.1)`, async () => {
      const r = await parseFile(f);
      const got = parts(r);
      assert.equal(got.length, 2, JSON.stringify(got));
      assert.deepEqual(got[0].slice(0, 1), ['text']);
      assert.equal(got[0][2].trim(), 'hello text');
      assert.equal(got[1][0], 'attachment');
      assert.deepEqual(bytesOf(r, r.save.parts[1].sha256), Buffer.from([0, 1, 2, 3, 4]));
      assert.deepEqual(r.save.defects, []);
    });
  }

  test('compareBoundary: padding after the boundary or its close, nothing else after it', () => {
    const b = Buffer.from('XYZ');
    const line = (s: string) => Buffer.from(s, 'latin1');
    assert.equal(compareBoundary(line('--XYZ\r\n'), 0, b), 1);
    assert.equal(compareBoundary(line('--XYZ \t\r\n'), 0, b), 1);
    assert.equal(compareBoundary(line('--XYZ--  \n'), 0, b), 2);
    assert.equal(compareBoundary(line('\r\n--XYZ \r\n'), 2, b), 1);
    assert.equal(compareBoundary(line('--XYZ--'), 0, b), 2);
    assert.equal(compareBoundary(line('--XYZ-1\r\n'), 0, b), false);
    assert.equal(compareBoundary(line('--XYZ x\r\n'), 0, b), false);
    assert.equal(compareBoundary(line('--XYZ--x\r\n'), 0, b), false);
    assert.equal(compareBoundary(line('--XYZ'), 0, b), false);
  });

  test('2a: a Date with an unknown zone is read as -0000 (RFC 5322 §4.3), not the time of parsing', async () => {
    const r = await parseFile('2a-date-unknown-zone.eml');
    assert.equal(r.save.date, '1995-11-20T19:12:08.000Z');
    assert.deepEqual(r.save.defects, ['unknown-date-zone']);
  });

  test('2b: a Date that does not parse leaves the message without a date', async () => {
    const r = await parseFile('2b-date-unparsable.eml');
    assert.equal(r.save.date, null);
    assert.deepEqual(r.save.defects, ['invalid-date']);
  });

  test('3: a header line without a colon starts the body (the blank line was missing)', async () => {
    const r = await parseFile('3-missing-header-separator.eml');
    const got = parts(r);
    assert.equal(got.length, 1, JSON.stringify(got));
    assert.equal(got[0][0], 'text');
    assert.equal(got[0][2].trim(), 'This line has no colon and starts the body.\nSecond body line.');
    assert.equal(r.save.subject, 'no blank line');
    assert.deepEqual(r.save.defects, ['missing-header-body-separator']);
  });

  test('4: multipart without a boundary is kept as text', async () => {
    const r = await parseFile('4-multipart-without-boundary.eml');
    const got = parts(r);
    assert.equal(got.length, 1, JSON.stringify(got));
    assert.equal(got[0][0], 'text');
    assert.equal(got[0][2].trim(), 'the body, kept as text');
    assert.deepEqual(r.save.defects, ['no-boundary-in-multipart']);
  });

  test('5: members of multipart/digest are message/rfc822 (RFC 2046 §5.1.5), not text', async () => {
    const r = await parseFile('5-multipart-digest.eml');
    const got = parts(r).filter((p) => p[0] !== 'text' || p[2].trim());
    assert.deepEqual(
      got.map((p) => [p[0], p[1]]),
      [
        ['attachment', 'message/rfc822'],
        ['attachment', 'message/rfc822'],
      ],
    );
    assert.match(got[0][2], /^From: carl@example.com\r\nSubject: first member\r\n\r\nfirst member body/);
    assert.deepEqual(r.save.defects, []);
  });

  test('6: Content-Type `text` without a subtype is text/plain (RFC 2045 §5.2), not an attachment', async () => {
    const r = await parseFile('6-content-type-without-subtype.eml');
    const got = parts(r);
    assert.deepEqual(got.map((p) => p[0]), ['text']);
    assert.equal(got[0][2].trim(), 'plain words');
    assert.deepEqual(r.save.defects, ['invalid-content-type']);
  });

  test('x-uuencode bodies are decoded between begin and end, as Python\'s email does', async () => {
    const r = await parseFile('uuencoded-attachment.eml');
    const att = r.save.parts.find((p) => p.kind === 'attachment')!;
    assert.deepEqual(bytesOf(r, att.sha256), Buffer.from(Array.from({ length: 200 }, (_, i) => i)));
  });

  test('a well-formed message has no defects', async () => {
    const blobs = memoryBlobs(Buffer.from('From: a@example.com\r\nDate: Tue, 1 Jul 2003 10:52:37 +0200\r\n\r\nhi\r\n'));
    const r = await parseStream(await blobs.open(''), { blobs, config }, 'm1');
    assert.deepEqual(r.save.defects, []);
    assert.equal(r.save.date, '2003-07-01T08:52:37.000Z');
  });

  test('a multipart cut before its close delimiter, or with no delimiter at all, says so', async () => {
    const cut = 'Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\npart one\r\n';
    const none = 'Content-Type: multipart/mixed; boundary=B\r\n\r\njust a preamble\r\n';
    for (const [raw, defect] of [
      [cut, 'close-boundary-not-found'],
      [none, 'start-boundary-not-found'],
    ]) {
      const blobs = memoryBlobs(Buffer.from(raw));
      const r = await parseStream(await blobs.open(''), { blobs, config }, 'm1');
      assert.deepEqual(r.save.defects, [defect]);
    }
  });
});

describe('parseMailDate (RFC 5322 §3.3, obsolete forms of §4.3)', () => {
  const cases: [string, string | null, string?][] = [
    ['Mon, 20 Nov 1995 19:12:08 -0500', '1995-11-21T00:12:08.000Z'],
    ['20 Nov 1995 19:12 +0000', '1995-11-20T19:12:00.000Z'],
    ['Mon, 20 Nov 95 19:12:08 GMT', '1995-11-20T19:12:08.000Z'],
    ['Mon, 20 Nov 49 19:12:08 GMT', '2049-11-20T19:12:08.000Z'],
    ['Mon, 20 Nov 1995 19:12:08 EST', '1995-11-21T00:12:08.000Z'],
    ['Mon, 20 Nov 1995 19:12:08 -0500 (EST)', '1995-11-21T00:12:08.000Z'],
    ['Mon,20 Nov 1995 19:12:08 +0100', '1995-11-20T18:12:08.000Z'],
    ['Nov 20 1995 19:12:08 +0000', '1995-11-20T19:12:08.000Z'],
    ['Wed Nov 20 19:12:08 1995', '1995-11-20T19:12:08.000Z', 'unknown-date-zone'],
    ['20 Nov 1995 19:12:08 A', '1995-11-20T19:12:08.000Z', 'unknown-date-zone'],
    ['Mon, 20 Nov 1995 19:12:08 H0500', '1995-11-20T19:12:08.000Z', 'unknown-date-zone'],
    ['Mon, 20 Nov 1995 19:12:08 -0000', '1995-11-20T19:12:08.000Z'],
    ['Sat, 31 Dec 2016 23:59:60 +0000', '2016-12-31T23:59:59.000Z'],
    ['30 Feb 2020 10:00:00 +0000', null, 'invalid-date'],
    ['tomorrow', null, 'invalid-date'],
    ['', null, 'invalid-date'],
  ];
  for (const [value, iso, defect] of cases) {
    test(JSON.stringify(value), () => {
      assert.deepEqual(parseMailDate(value), defect ? { iso, defect } : { iso });
    });
  }
});

async function parseRaw(raw: string | Buffer): Promise<ParseResult> {
  const blobs = memoryBlobs(typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw);
  return parseStream(await blobs.open(''), { blobs, config }, 'm1');
}

const textOf = (r: ParseResult) => {
  const t = r.save.parts.find((p) => p.kind === 'text');
  return t ? bytesOf(r, t.sha256).toString('utf8') : null;
};

describe('MIME structure as RFC 2046 reads it, and each text part as sent', () => {
  test('each inline text part is a body part of its own, in its declared charset', async () => {
    const r = await parseRaw(
      [
        'Content-Type: multipart/alternative; boundary=B',
        '',
        '--B',
        'Content-Type: text/plain; charset=iso-8859-1',
        'Content-Transfer-Encoding: quoted-printable',
        '',
        'Gr=FC=DFe',
        '--B',
        'Content-Type: text/html; charset=windows-1251',
        '',
        '<p>\xcf\xf0\xe8\xe2\xe5\xf2</p>',
        '--B--',
        '',
      ].join('\r\n'),
    );
    const bodies = r.save.parts.filter((p) => p.kind === 'body');
    assert.deepEqual(
      bodies.map((p) => [p.content_type, bytesOf(r, p.sha256).toString('latin1')]),
      [
        ['text/plain; charset="iso-8859-1"', 'Gr\xfc\xdfe'],
        ['text/html; charset="windows-1251"', '<p>\xcf\xf0\xe8\xe2\xe5\xf2</p>'],
      ],
    );
    assert.equal(textOf(r), 'Grüße');
    // The attachments' indexes come first and stay as they were.
    assert.deepEqual(r.save.parts.map((p) => p.kind), ['text', 'html', 'body', 'body']);
  });

  test('a lone UTF-8 or US-ASCII text part needs no body part: /text is it', async () => {
    for (const type of ['text/plain', 'text/plain; charset=utf-8', 'text/plain; charset=US-ASCII']) {
      const r = await parseRaw(`Content-Type: ${type}\r\n\r\nhello\r\n`);
      assert.deepEqual(r.save.parts.map((p) => p.kind), ['text'], type);
    }
  });

  test('text/plain in UTF-7 (RFC 2152) is decoded in /text; its body part keeps the bytes sent', async () => {
    const r = await parseRaw('Content-Type: text/plain; charset=utf-7\r\n\r\nDie Fr+APY-sche\r\n');
    assert.equal(textOf(r)?.trim(), 'Die Frösche');
    const body = r.save.parts.find((p) => p.kind === 'body')!;
    assert.equal(body.content_type, 'text/plain; charset="utf-7"');
    assert.equal(bytesOf(r, body.sha256).toString('latin1'), 'Die Fr+APY-sche\r\n');
  });

  test('an x- charset label is read by its bare name (x-mac-cyrillic)', async () => {
    const r = await parseRaw('Content-Type: text/plain; charset=x-mac-cyrillic\r\n\r\n\x92\xe5\xea\xf3\xf9\xe8\xe9\r\n');
    assert.equal(textOf(r)?.trim(), 'Текущий');
  });

  test("a part's header block ends at a line that is no header field: the body starts there", async () => {
    const r = await parseRaw(
      ['Content-Type: multipart/mixed; boundary=B', '', '--B', 'Content-Type: text/plain', 'this line is the body', 'and this', '--B--', ''].join('\r\n'),
    );
    assert.equal(textOf(r)?.trim(), 'this line is the body\nand this');
    assert.deepEqual(r.save.defects, ['missing-header-body-separator']);
  });

  test("an embedded message's mbox From line is no body start", async () => {
    const r = await parseRaw(
      ['Content-Type: multipart/mixed; boundary=B', '', '--B', 'Content-Type: message/rfc822', 'Content-Disposition: inline', '', 'From someone Tue Jul 10 18:50:15 2012', 'Subject: inner', '', 'inner body', '--B--', ''].join('\r\n'),
    );
    assert.deepEqual(r.save.defects, []);
    const body = r.save.parts.find((p) => p.kind === 'body')!;
    assert.equal(bytesOf(r, body.sha256).toString('utf8'), 'inner body');
  });

  test('a delimiter of an enclosing multipart ends a part of an inner one left open', async () => {
    const r = await parseRaw(
      [
        'Content-Type: multipart/mixed; boundary=OUTER',
        '',
        '--OUTER',
        'Content-Type: multipart/mixed; boundary=INNER',
        '',
        '--INNER',
        'Content-Type: application/octet-stream',
        'Content-Transfer-Encoding: base64',
        '',
        'AAEC',
        '--OUTER--',
        '',
      ].join('\r\n'),
    );
    const att = r.save.parts.find((p) => p.kind === 'attachment')!;
    assert.deepEqual([...bytesOf(r, att.sha256)], [0, 1, 2]);
    assert.deepEqual(r.save.defects, ['close-boundary-not-found']);
  });

  test('a delimiter straight before the close: one empty part, no preamble taken for text', async () => {
    const r = await parseRaw(['Content-Type: multipart/mixed; boundary=B', '', 'preamble', '', '--B', '--B--', '', 'epilogue', ''].join('\r\n'));
    assert.equal((r.save.defects ?? []).includes('start-boundary-not-found'), false);
    assert.doesNotMatch(textOf(r) ?? '', /preamble|epilogue/);
  });

  test('a multipart without a first delimiter: its text ends at the close, the epilogue is not in it', async () => {
    const r = await parseRaw(['Content-Type: multipart/mixed; boundary=B', '', 'the only text', '', '--B--', '', 'epilogue', ''].join('\r\n'));
    assert.equal(textOf(r)?.trim(), 'the only text');
    assert.deepEqual(r.save.defects, ['start-boundary-not-found']);
  });

  test('property: text before a close delimiter is kept whole, whatever it is (untilClose)', () => {
    const line = fc.string({ unit: fc.constantFrom('a', ' ', '-', '=', '\t', 'é', 'B'), maxLength: 20 }).filter((l) => !l.startsWith('--'));
    fc.assert(
      fc.property(fc.array(line, { maxLength: 8 }), fc.constantFrom('', ' ', '\t '), fc.string({ maxLength: 20 }), (lines, pad, epilogue) => {
        const preamble = lines.join('\r\n');
        const body = Buffer.from(`${preamble}\r\n--B--${pad}\r\n${epilogue}`, 'utf8');
        assert.equal(untilClose(body, [Buffer.from('B')]).toString('utf8'), preamble);
      }),
    );
  });

  test('property: a part whose header block runs into its body keeps every body line', async () => {
    const bodyLine = fc.string({ unit: fc.constantFrom('a', 'b', ' ', '.', '!'), minLength: 1, maxLength: 30 }).filter((l) => /^[a-b.!]/.test(l));
    await fc.assert(
      fc.asyncProperty(fc.array(bodyLine, { minLength: 1, maxLength: 5 }), async (lines) => {
        const r = await parseRaw(['Content-Type: multipart/mixed; boundary=B', '', '--B', 'Content-Type: text/plain', ...lines, '--B--', ''].join('\r\n'));
        assert.equal((textOf(r) ?? '').replace(/\s+/g, ' ').trim(), lines.join(' ').replace(/\s+/g, ' ').trim());
        assert.ok((r.save.defects ?? []).includes('missing-header-body-separator'));
      }),
      { numRuns: 200 },
    );
  });
});
