import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Readable } from 'node:stream';
import { receivedHeader, rfc5322Date, withTrace } from '../../src/mime/trace.js';

const base = { mailFrom: 'a@x', ingress: 'smtp', receivedAt: new Date('2026-11-21T06:07:08Z') };

test('names the protocol per RFC 3848 and the recipient only when there is one', () => {
  const one = receivedHeader({ ...base, rcptTo: ['b@y'], helo: 'h.example', clientIp: '192.0.2.1', tls: 'TLSv1.3', authUser: 'u' }, 'ID1', 'mx');
  assert.equal(one, 'Received: from h.example ([192.0.2.1])\r\n\tby mx (Postroom) with ESMTPSA id ID1\r\n\tfor <b@y>;\r\n\tSat, 21 Nov 2026 06:07:08 +0000\r\n');
  const two = receivedHeader({ ...base, rcptTo: ['b@y', 'hidden-bcc@y'] }, 'ID2', 'mx');
  assert.ok(!two.includes('hidden-bcc'), 'a Bcc recipient must not leak into the trace header');
});

test('cannot be broken out of by a hostile HELO: CRLF, bare LF, bare CR, NUL, folding, comments', () => {
  // Mail readers and MTAs end a header line at a bare LF or CR too (RFC 5322 §2.2 forbids them
  // alone, parsers accept them): any line break at all must be gone, not only CRLF.
  for (const helo of [
    'evil\r\nX-Injected: yes',
    'evil\nX-Injected: yes',
    'evil\rX-Injected: yes',
    'evil\n\nbody starts here',
    'evil\r\n X-Folded: yes',
    'evil\x00X-Injected: yes',
    'evil) (by forged.example',
    'évil\u2028X-Injected: yes',
  ]) {
    const h = receivedHeader({ ...base, rcptTo: ['b@y'], helo, clientIp: '192.0.2.1' }, 'ID', 'mx');
    const lines = h.split(/\r\n|\r|\n/);
    assert.equal(lines.pop(), '', `${JSON.stringify(helo)}: ends with its line break`);
    assert.equal(lines.length, h.split('\r\n').length - 1, `${JSON.stringify(helo)}: every line break is CRLF`);
    assert.match(lines[0]!, /^Received: from [\x21-\x7e]+ \(\[192\.0\.2\.1\]\)$/, JSON.stringify(helo));
    for (const l of lines.slice(1)) assert.match(l, /^\t[\x20-\x7e]+$/, `${JSON.stringify(helo)}: a continuation line, printable ASCII`);
    assert.ok(!/X-Injected|X-Folded|body starts|forged/.test(h.split('\r\n')[0]!.replace(/^Received: from \S+/, '')), JSON.stringify(helo));
  }
  assert.equal(rfc5322Date(new Date('2026-01-02T03:04:05Z')), 'Fri, 02 Jan 2026 03:04:05 +0000');
});

test('withTrace: the trace header takes the message line ending, then the bytes follow unchanged', async () => {
  const trace = 'Received: from a\r\n\tby b (Postroom) with PIPE id X;\r\n\tSat, 21 Nov 2026 06:07:08 +0000\r\n';
  const cases: [string, Buffer[], string][] = [
    ['CRLF mail (SMTP)', [Buffer.from('Subject: a\r\n\r\nbody\r\n')], trace],
    ['LF mail (an MTA pipe)', [Buffer.from('Subject: a\n'), Buffer.from('\nbody\n')], trace.replace(/\r\n/g, '\n')],
    ['a first chunk with no line end: CRLF assumed', [Buffer.from('Subj'), Buffer.from('ect: a\n\nx\n')], trace],
    ['no bytes at all', [], trace],
  ];
  for (const [what, chunks, head] of cases) {
    const { stream, length } = await withTrace(trace, Readable.from(chunks));
    const out = Buffer.concat(await stream.toArray());
    assert.equal(out.toString('latin1'), head + Buffer.concat(chunks).toString('latin1'), what);
    assert.equal(length, Buffer.byteLength(head), `${what}: length`);
  }
  const raw = Readable.from([Buffer.from('x\r\n')]);
  assert.equal((await withTrace(null, raw)).stream, raw, 'no trace: the stream itself');
});

test('withTrace: destroying the result closes the message stream (a client that hangs up)', async () => {
  let closed = false;
  const raw = new Readable({ read() {} });
  raw.on('close', () => (closed = true));
  raw.push(Buffer.from('Subject: a\r\n'));
  const { stream } = await withTrace('Received: x\r\n', raw);
  const it = stream[Symbol.asyncIterator]();
  await it.next();
  await it.return?.();
  await new Promise((r) => setImmediate(r));
  assert.ok(closed);
});
