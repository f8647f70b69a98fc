import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { addressesIn, importEnvelope } from '../../src/ingress/import/envelope.js';
import { maildirFlags } from '../../src/ingress/import/files.js';
import { detectVariant, fromLineOf, fromLineSender, MboxReader, mboxrdQuote, type MboxVariant } from '../../src/ingress/import/mbox.js';
import { parseHeaderBlock } from '../../src/mime/header-sniff.js';

/** The bytes as a source of chunks of `size` bytes (1: every boundary a chunk boundary). */
async function* chunked(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function readAll(file: Buffer, variant: MboxVariant, chunk = 65536): Promise<{ offset: number; fromLine: string; body: string }[]> {
  const r = new MboxReader(chunked(file, chunk), variant);
  const out = [];
  for (let m = await r.next(); m; m = await r.next()) {
    const parts: Buffer[] = [];
    for await (const c of m.body) parts.push(c);
    out.push({ offset: m.offset, fromLine: m.fromLine, body: Buffer.concat(parts).toString('latin1') });
  }
  return out;
}

async function mboxrdOf(messages: Buffer[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const m of messages) {
    parts.push(Buffer.from(fromLineOf('a@example.org', new Date(0))));
    for await (const c of mboxrdQuote(chunked(m, 7))) parts.push(c);
  }
  return Buffer.concat(parts);
}

describe('mbox reading', () => {
  const file = Buffer.from(
    'From a@example.org Thu Jan  1 00:00:00 1970\nSubject: one\n\nbody\n>From quoted\n>>From twice\n\n' +
      'From MAILER-DAEMON Thu Jan  1 00:00:00 1970\nSubject: two\n\nlast\n',
  );

  it('mboxrd takes one > off every >*From line; one blank line before a From_ line is the separator', async () => {
    const got = await readAll(file, 'mboxrd');
    assert.deepEqual(
      got.map((m) => m.body),
      ['Subject: one\n\nbody\nFrom quoted\n>From twice\n', 'Subject: two\n\nlast\n'],
    );
    assert.equal(got[1].offset, file.indexOf('From MAILER'));
    assert.equal(fromLineSender(got[0].fromLine), 'a@example.org');
    assert.equal(fromLineSender(got[1].fromLine), '');
  });

  it('mboxo takes a > off >From only; mboxcl2 unquotes nothing', async () => {
    assert.equal((await readAll(file, 'mboxo'))[0].body, 'Subject: one\n\nbody\nFrom quoted\n>>From twice\n');
    assert.equal((await readAll(file, 'mboxcl2'))[0].body, 'Subject: one\n\nbody\n>From quoted\n>>From twice\n');
  });

  it('mboxcl2 reads a body by its Content-Length, From lines in it included, and auto-detection finds it', async () => {
    const body = 'From inside the body\nmore\n';
    const cl2 = Buffer.from(
      `From a@b Thu Jan  1 00:00:00 1970\nContent-Length: ${body.length}\nSubject: x\n\n${body}\n` + `From a@b Thu Jan  1 00:00:00 1970\nContent-Length: 2\n\nhi\n`,
    );
    assert.equal(detectVariant(cl2, cl2.length), 'mboxcl2');
    assert.equal(detectVariant(file, file.length), 'mboxrd');
    const got = await readAll(cl2, 'mboxcl2', 3);
    assert.deepEqual(
      got.map((m) => m.body),
      [`Content-Length: ${body.length}\nSubject: x\n\n${body}`, 'Content-Length: 2\n\nhi'],
    );
  });

  it('refuses a file that does not start with a From_ line (BAD_MAILBOX, exit 65)', async () => {
    await assert.rejects(readAll(Buffer.from('Subject: not an mbox\n\nhi\n'), 'mboxrd'), (e: Error & { code?: string }) => e.code === 'BAD_MAILBOX');
  });

  it('a line longer than the reader holds at once passes through whole', async () => {
    const long = 'x'.repeat(3 * 1024 * 1024);
    const got = await readAll(Buffer.from(`From a@b Thu Jan  1 00:00:00 1970\nSubject: long\n\n${long}\nFrom a@b x\n\n`), 'mboxrd', 256 * 1024);
    assert.equal(got[0].body, `Subject: long\n\n${long}\n`);
    assert.equal(got.length, 2);
  });

  it('property: mboxrd export then import gives back any message ending in a line break, From lines and all, at any chunking', async () => {
    const line = fc.oneof(
      fc.constantFrom('From ', '>From ', '>>From x', 'From', '>', '', 'From me Thu', '>>>>From  ', 'Fro'),
      fc.string({ unit: fc.constantFrom('F', 'r', 'o', 'm', ' ', '>', 'a', '\r') , maxLength: 12 }),
    );
    const message = fc
      .tuple(fc.array(line, { minLength: 1, maxLength: 12 }), fc.constantFrom('\n', '\r\n'))
      .map(([lines, eol]) => Buffer.from(`Subject: t${eol}${eol}${lines.join(eol)}${eol}`, 'latin1'));
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 5 }), fc.integer({ min: 1, max: 64 }), async (messages, chunk) => {
        const file = await mboxrdOf(messages);
        const got = await readAll(file, 'mboxrd', chunk);
        assert.deepEqual(
          got.map((m) => m.body),
          messages.map((m) => m.toString('latin1')),
        );
      }),
      { numRuns: 300 },
    );
  });
});

describe('maildir flags and the envelope of an imported message', () => {
  it('maps the info letters to IMAP flags and leaves keywords out', () => {
    assert.deepEqual(maildirFlags('1733.M1P2.host:2,FRS'), ['\\Flagged', '\\Answered', '\\Seen']);
    assert.deepEqual(maildirFlags('1733.M1P2.host:2,DPTab'), ['\\Draft', '$Forwarded', '\\Deleted']);
    assert.deepEqual(maildirFlags('1733.M1P2.host'), []);
    assert.deepEqual(maildirFlags('1733.M1P2.host!2,S'), ['\\Seen']);
  });

  it('takes recipients from X-Original-To, else Delivered-To, else To, and the sender from Return-Path, else the From_ line', () => {
    const h = (s: string) => parseHeaderBlock(Buffer.from(s));
    assert.deepEqual(importEnvelope(h('X-Original-To: a@x.org\nDelivered-To: b@x.org\nTo: c@x.org\n'), {}), { mailFrom: '', rcptTo: ['a@x.org'] });
    assert.deepEqual(importEnvelope(h('Delivered-To: b@x.org\nDelivered-To: d@x.org\nTo: c@x.org\n'), {}).rcptTo, ['b@x.org', 'd@x.org']);
    assert.deepEqual(importEnvelope(h('To: "Jan, @home" <c@x.org>, e@x.org (Eve)\n'), {}).rcptTo, ['c@x.org', 'e@x.org']);
    assert.equal(importEnvelope(h('Return-Path: <s@x.org>\nTo: c@x.org\n'), { fromLineSender: 'f@x.org' }).mailFrom, 's@x.org');
    assert.equal(importEnvelope(h('Return-Path: <>\nTo: c@x.org\n'), { fromLineSender: 'f@x.org' }).mailFrom, '');
    assert.equal(importEnvelope(h('To: c@x.org\n'), { fromLineSender: 'f@x.org' }).mailFrom, 'f@x.org');
    assert.deepEqual(importEnvelope(h('To: c@x.org\n'), { from: 'g@x.org', to: ['t@x.org'] }), { mailFrom: 'g@x.org', rcptTo: ['t@x.org'] });
    assert.throws(() => importEnvelope(h('Subject: nobody\n'), {}), (e: Error & { code?: string }) => e.code === 'NO_RECIPIENT');
    assert.deepEqual(addressesIn('undisclosed-recipients:;'), []);
  });
});
