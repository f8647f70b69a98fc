import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { parseSearch } from '../../src/core/message-search.js';
import { reindexMessages } from '../../src/store/reindex.js';
import { waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

/** One message of the small store, and what a naive search over it reads. */
interface Mail {
  rcpt: string;
  sender: string;
  from: string;
  to: { name: string; address: string }[];
  subject: string;
  body: string;
}

const MAILS: Mail[] = [
  { rcpt: 'orders-1@postroom.test', sender: 'alice@example.org', from: 'Alice Smith <alice@example.org>', to: [{ name: 'Bob Jones', address: 'bob@example.net' }], subject: 'Invoice 100% "final"', body: 'Please pay the invoice NEAR(the end) of the month.' },
  { rcpt: 'orders-2@postroom.test', sender: 'bounce@lists.example', from: 'Carol <carol@shop.example>', to: [{ name: 'Dave', address: 'dave@example.net' }, { name: 'Erin', address: 'erin@example.org' }], subject: 'my_file [draft] *new*', body: 'col:subject ^start (parentheses) and "quotes" here' },
  { rcpt: 'support@postroom.test', sender: 'frank@example.com', from: 'Frank <frank@example.com>', to: [{ name: 'Support', address: 'support@postroom.test' }], subject: 'Ärger mit der Lieferung', body: 'Die Lieferung ist nicht angekommen. ÄÖÜ straße' },
  { rcpt: 'orders-3@postroom.test', sender: 'alice@example.org', from: 'Alice Smith <alice@example.org>', to: [{ name: 'Bob Jones', address: 'bob@example.net' }], subject: 'Re: Invoice', body: 'thanks, paid. back\\slash and a-b-c' },
  { rcpt: 'orders-4@postroom.test', sender: 'gina@example.org', from: 'Gina <gina@example.org>', to: [{ name: 'Hal', address: 'hal@example.net' }], subject: 'status report', body: 'nothing to see: OR AND NOT * ? [x]' },
];

function raw(m: Mail): string {
  return [`From: ${m.from}`, `To: ${m.to.map((t) => `${t.name} <${t.address}>`).join(', ')}`, `Subject: ${m.subject}`, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', '', m.body, ''].join('\r\n');
}

/** What each search column holds for a message, as a naive filter reads it. */
function fields(m: Mail) {
  return {
    subject: [m.subject],
    sender: [m.from, m.sender],
    recipients: m.to.map((t) => `${t.name} ${t.address}`),
    rcpt: [m.rcpt],
    body: [m.body],
  };
}

/** The naive filter: every term a case-insensitive substring of one value of its columns. */
function naive(q: string, m: Mail): boolean {
  const f = fields(m);
  const cols: Record<string, (keyof typeof f)[]> = { text: ['subject', 'sender', 'recipients', 'rcpt', 'body'], from: ['sender'], to: ['recipients'], rcpt: ['rcpt'], subject: ['subject'] };
  return parseSearch(q).every((t) => {
    const hit = cols[t.field].some((c) => f[c].some((v) => v.toLowerCase().includes(t.value.toLowerCase())));
    return t.negate ? !hit : hit;
  });
}

describe('the search index: free text over subject, addresses and body, on this run\'s backend', () => {
  let pr: TestPostroom;
  const ids: string[] = [];

  async function search(params: Record<string, string>): Promise<{ status: number; ids: string[] }> {
    const res = await pr.api(`/api/v1/messages?${new URLSearchParams({ limit: '500', ...params })}`);
    const body = (await res.json()) as { items?: { id: string }[] };
    return { status: res.status, ids: (body.items ?? []).map((m) => m.id).sort() };
  }

  before(async () => {
    pr = await startTestPostroom({ smtp: { enabled: false }, routes: [{ name: 'all', match: { recipient: '*@postroom.test' }, deliver: [{ discard: {} }] }] });
    for (const m of MAILS) {
      const res = await pr.api(`/api/v1/inbound?${new URLSearchParams({ recipient: m.rcpt, sender: m.sender })}`, { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: raw(m) });
      assert.equal(res.status, 202, await res.clone().text());
      ids.push(((await res.json()) as { id: string }).id);
    }
    await waitFor(async () => (await pr.db.kysely.selectFrom('message_text').select('message').execute()).length === MAILS.length, 'every message indexed', 20_000);
  });
  after(() => pr?.close());

  it('finds a message by a word of its body, part of a To: address, and a subject substring', async () => {
    assert.deepEqual((await search({ q: 'angekommen' })).ids, [ids[2]]);
    assert.deepEqual((await search({ q: 'to:dave@' })).ids, [ids[1]]);
    assert.deepEqual((await search({ q: 'LIEFERUNG' })).ids, [ids[2]]);
    assert.deepEqual((await search({ subject: 'report' })).ids, [ids[4]]);
    assert.deepEqual((await search({ from: 'ALICE@example' })).ids, [ids[0], ids[3]].sort());
    assert.deepEqual((await search({ q: 'no-such-word-anywhere' })).ids, []);
  });

  it('reindex rebuilds the documents from the rows and the text parts', async () => {
    await pr.db.kysely.deleteFrom('message_text').execute();
    assert.deepEqual((await search({ q: 'angekommen' })).ids, []);
    const seen: number[] = [];
    const done = await reindexMessages(pr.db, pr.blobs, (p) => seen.push(p.done));
    assert.deepEqual(done, { done: MAILS.length, total: MAILS.length });
    assert.equal(seen.at(-1), MAILS.length);
    assert.deepEqual((await search({ q: 'angekommen' })).ids, [ids[2]]);
    assert.deepEqual((await search({ q: 'to:dave@' })).ids, [ids[1]]);
  });

  it('any query string: never a 500, NUL a 400, and the same matches as a naive filter', async () => {
    const token = fc.oneof(
      fc.constantFrom('"', '*', '^', '(', ')', 'NEAR', 'NEAR(', ' ', '  ', '-', ':', '%', '_', '[', ']', '\\', '?', 'AND', 'OR', 'NOT', '{', '}', '+', "'", '\u0000'),
      fc.constantFrom('subject:', 'from:', 'to:', 'rcpt:', 'body:', 'col:', 'subject : ', 'message_search', 'text'),
      fc.constantFrom('alice', 'Invoice', 'inv', 'ex', 'example.org', '@', '.', 'ä', 'Ä', 'straße', 'my_file', '100%', 'final', 'draft', 'bob jones', 'e', 'pay', 'paid'),
      fc.string({ maxLength: 4 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(token, { maxLength: 8 }).map((t) => t.join('')), async (q) => {
        const res = await search({ q });
        assert.notEqual(res.status, 500, `q=${JSON.stringify(q)}`);
        let expected: string[];
        try {
          if (q.includes('\u0000')) throw new Error('NUL');
          expected = q.trim() ? ids.filter((_, i) => naive(q, MAILS[i])).sort() : [...ids].sort();
        } catch {
          assert.equal(res.status, 400, `q=${JSON.stringify(q)} should be refused`);
          return;
        }
        assert.equal(res.status, 200, `q=${JSON.stringify(q)}`);
        assert.deepEqual(res.ids, expected, `q=${JSON.stringify(q)}`);
      }),
      { numRuns: 300 },
    );
  });
});
