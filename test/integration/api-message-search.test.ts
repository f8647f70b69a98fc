import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SEARCH_WINDOW } from '../../src/api/routes/messages.js';
import { idFloor } from '../../src/core/ids.js';
import { insertMessages, newMessageRow } from '../../src/store/messages.js';
import { searchDoc, searchIndexOf } from '../../src/store/search-index.js';
import { waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

/** GET /api/v1/messages?q=, the live event stream and the route tester, on the backend of this run. */
describe('message search, events and the route tester through the API', () => {
  let pr: TestPostroom;
  const ids: Record<string, string> = {};

  async function inbound(name: string, rcpt: string, sender: string, raw: string) {
    const q = new URLSearchParams({ recipient: rcpt, sender });
    const res = await pr.api(`/api/v1/inbound?${q}`, { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: raw.replace(/\r?\n/g, '\r\n') });
    assert.equal(res.status, 202, await res.clone().text());
    ids[name] = ((await res.json()) as { id: string }).id;
  }

  async function search(q: string): Promise<string[]> {
    const res = await pr.api(`/api/v1/messages?${new URLSearchParams({ q })}`);
    assert.equal(res.status, 200, await res.clone().text());
    const names = Object.fromEntries(Object.entries(ids).map(([k, v]) => [v, k]));
    return ((await res.json()) as { items: { id: string }[] }).items.map((m) => names[m.id] ?? m.id).sort();
  }

  before(async () => {
    pr = await startTestPostroom({
      routes: [
        { name: 'orders', match: { recipient: 'orders-{n}@postroom.test' }, deliver: [{ discard: {} }] },
        { name: 'vip', match: { recipient: 'vip-*@postroom.test', sender: { allow: ['/@vip\\.test$/'] } }, deliver: [{ discard: {} }] },
        { name: 'rest', match: { recipient: '*@postroom.test' }, deliver: [{ discard: {} }], catchAll: true },
      ],
    });
    await inbound('plain', 'someone@postroom.test', 'alice@example.org', 'From: Alice <alice@example.org>\nTo: Bob <bob@example.net>\nSubject: Quarterly numbers\nMessage-ID: <q1@example.org>\n\nsee attached\n');
    const big = 'x'.repeat(3000);
    await inbound(
      'attached',
      'orders-7@postroom.test',
      'carol@example.org',
      `From: carol@example.org\nTo: orders@postroom.test\nSubject: Invoice 7\nMessage-ID: <inv7@example.org>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=inv.pdf\n\n${big}\n--b--\n`,
    );
    await inbound('nosubject', 'someone@postroom.test', '', 'From: daemon@example.org\nMessage-ID: <ns@example.org>\n\nno subject here\n');
    await waitFor(async () => (await search('status:received')).length === 0 && (await search('route:orders')).length === 1, 'all routed');
  });
  after(() => pr?.close());

  it('each key finds what it names, and - negates it', async () => {
    assert.deepEqual(await search('from:alice'), ['plain']);
    assert.deepEqual(await search('-from:alice'), ['attached', 'nosubject']);
    assert.deepEqual(await search('to:bob'), ['plain']);
    assert.deepEqual(await search('rcpt:orders-7'), ['attached']);
    assert.deepEqual(await search('subject:quarterly'), ['plain']);
    // A message without a subject is kept by a negated subject term (NULL is not "unknown" here).
    assert.deepEqual(await search('-subject:quarterly'), ['attached', 'nosubject']);
    assert.deepEqual(await search('message-id:<inv7@example.org>'), ['attached']);
    assert.deepEqual(await search('route:orders'), ['attached']);
    assert.deepEqual(await search('route:rest'), ['nosubject', 'plain']);
    assert.deepEqual(await search('ingress:http'), ['attached', 'nosubject', 'plain']);
    assert.deepEqual(await search('has:attachment'), ['attached']);
    assert.deepEqual(await search('-has:attachment'), ['nosubject', 'plain']);
    assert.deepEqual(await search('larger:2k'), ['attached']);
    assert.deepEqual(await search('smaller:2k'), ['nosubject', 'plain']);
    assert.deepEqual(await search('after:2000-01-01 before:2100-01-01'), ['attached', 'nosubject', 'plain']);
    assert.deepEqual(await search('before:2000-01-01'), []);
    assert.deepEqual(await search('status:delivered'), ['attached', 'nosubject', 'plain']);
  });

  it('free text looks in subject and addresses; terms combine with AND; LIKE wildcards are literal', async () => {
    assert.deepEqual(await search('invoice'), ['attached']);
    assert.deepEqual(await search('example.org -invoice'), ['nosubject', 'plain']);
    assert.deepEqual(await search('"quarterly numbers"'), ['plain']);
    assert.deepEqual(await search('%'), []);
    assert.deepEqual(await search('_'), []);
  });

  it('a bad term is a 400 problem naming it', async () => {
    const res = await pr.api(`/api/v1/messages?q=${encodeURIComponent('larger:lots')}`);
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { detail: string }).detail, /query\.q: 'lots' is not a size/);
  });

  it('the event stream sends what arrives after it opened, with the message id as event id', async () => {
    const controller = new AbortController();
    const res = await pr.api('/api/v1/messages/events?q=subject:live', { signal: controller.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    await inbound('ignored', 'someone@postroom.test', 'x@example.org', 'Subject: not this one\nMessage-ID: <e0@x>\n\nx\n');
    await inbound('live', 'someone@postroom.test', 'x@example.org', 'Subject: live one\nMessage-ID: <e1@x>\n\nx\n');
    let buf = '';
    while (!/\n\n[^]*event: message[^]*\n\n/.test(buf)) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
    }
    controller.abort();
    const event = /event: message\nid: (\S+)\ndata: (.*)\n\n/.exec(buf);
    assert.ok(event, buf);
    assert.equal(event[1], ids.live);
    assert.equal((JSON.parse(event[2]) as { subject: string }).subject, 'live one');
    assert.doesNotMatch(buf, /not this one/);
  });

  it('the route tester names the route, captures, targets, refusals and RCPT reply; nothing is kept', async () => {
    const count = async () => ((await (await pr.api('/api/v1/system')).json()) as { store: { messages: number } }).store.messages;
    const before = await count();
    const q = new URLSearchParams({ sender: 'eve@example.org' });
    for (const r of ['orders-42@postroom.test', 'x@postroom.test', 'vip-1@postroom.test', 'nobody@else.test']) q.append('recipient', r);
    const res = await pr.api(`/api/v1/routes/test?${q}`);
    assert.equal(res.status, 200, await res.clone().text());
    const body = (await res.json()) as { recipients: { recipient: string; routes: { route: string; captures: Record<string, string>; targets: { kind: string }[] }[]; refusals: { route: string }[]; rcptReply: string }[] };
    const [orders, x, vip, nobody] = body.recipients;
    assert.deepEqual(orders.routes.map((r) => [r.route, r.captures, r.targets[0].kind]), [['orders', { n: '42' }, 'discard']]);
    assert.equal(orders.rcptReply, '250 2.1.5 Recipient OK');
    assert.deepEqual(x.routes.map((r) => r.route), ['rest']);
    // vip refuses this sender: the refusal is named and is what RCPT would answer.
    assert.deepEqual(vip.routes, []);
    assert.deepEqual(vip.refusals.map((r) => r.route), ['vip']);
    assert.match(vip.rcptReply, /^550 5\.7\.1/);
    assert.match(nobody.rcptReply, /^550 5\.1\.1/);
    assert.equal(await count(), before);
  });

  it('the route tester takes a stored message: its envelope and content', async () => {
    const res = await pr.api(`/api/v1/routes/test?message=${ids.attached}`);
    const body = (await res.json()) as { contentChecked: boolean; envelope: { sender: string }; recipients: { routes: { route: string }[] }[] };
    assert.equal(body.contentChecked, true);
    assert.equal(body.envelope.sender, 'carol@example.org');
    assert.deepEqual(body.recipients[0].routes.map((r) => r.route), ['orders']);
  });

  it('GET /api/v1/routes lists routes in the order they are tried', async () => {
    const body = (await (await pr.api('/api/v1/routes')).json()) as { items: { name: string; catchAll: boolean }[] };
    assert.deepEqual(body.items.map((r) => r.name), ['orders', 'vip', 'rest']);
  });
});

describe('a search over many messages: rare terms from the index, the rest in a bounded window per request', () => {
  let pr: TestPostroom;
  before(async () => {
    pr = await startTestPostroom({ smtp: { enabled: false } });
    // The match is the oldest message; SEARCH_WINDOW + 50 newer ones do not match.
    const base = Date.now() - 86_400_000;
    const rows = Array.from({ length: SEARCH_WINDOW + 51 }, (_, i) => {
      const r = newMessageRow(
        `${idFloor(base + i * 1000)}${String(i).padStart(16, '0')}`,
        { mailFrom: i === 0 ? 'needle@example.org' : `hay${i}@example.org`, rcptTo: ['x@postroom.test'], ingress: 'smtp', receivedAt: new Date(base + i * 1000) },
        { sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', size: 100 },
        { messageId: null, subject: `message ${i}`, from: null, date: null },
        null,
      );
      return { ...r, parse_status: 'parsed', status: 'delivered', parsed_at: r.received_at };
    });
    const index = searchIndexOf(pr.db.kysely);
    for (let i = 0; i < rows.length; i += 500) {
      await pr.db.kysely.transaction().execute(async (trx) => {
        const batch = rows.slice(i, i + 500);
        await insertMessages(trx, batch);
        await index.put(trx, batch.map((r) => searchDoc({ message: r.id, subject: r.subject, from: null, mailFrom: r.mail_from, rcptTo: JSON.parse(r.rcpt_to) as string[], addresses: null, body: `body of ${r.id}` })));
      });
    }
  });
  after(() => pr?.close());

  it('a rare term is answered from the index in one page, however old its match', async () => {
    const page = (await (await pr.api('/api/v1/messages?q=from:needle')).json()) as { items: { mailFrom: string }[]; nextCursor: string | null };
    assert.deepEqual(page.items.map((m) => m.mailFrom), ['needle@example.org']);
    assert.equal(page.nextCursor, null);
    const filtered = (await (await pr.api('/api/v1/messages?from=NEEDLE@')).json()) as { items: { mailFrom: string }[]; nextCursor: string | null };
    assert.deepEqual(filtered.items.map((m) => m.mailFrom), ['needle@example.org']);
    const none = (await (await pr.api('/api/v1/messages?q=no-such-sender')).json()) as { items: unknown[]; nextCursor: string | null };
    assert.deepEqual(none, { items: [], nextCursor: null });
  });

  it('a term too short for the index reads a window: the page may be short with a cursor to older mail; following it finds the match', async () => {
    const first = (await (await pr.api('/api/v1/messages?q=from:ne')).json()) as { items: unknown[]; nextCursor: string | null };
    assert.deepEqual(first.items, []);
    assert.ok(first.nextCursor, 'a cursor below the window');
    const second = (await (await pr.api(`/api/v1/messages?q=from:ne&cursor=${first.nextCursor}`)).json()) as { items: { mailFrom: string }[]; nextCursor: string | null };
    assert.deepEqual(second.items.map((m) => m.mailFrom), ['needle@example.org']);
    assert.equal(second.nextCursor, null);
    // Without a search the list is not windowed: a full page of the newest.
    const plain = (await (await pr.api('/api/v1/messages?limit=500')).json()) as { items: unknown[] };
    assert.equal(plain.items.length, 500);
  });

  it('a common term walks the newest rows: a full page, and its cursor continues', async () => {
    const page = (await (await pr.api('/api/v1/messages?q=example.org&limit=20')).json()) as { items: unknown[]; nextCursor: string | null };
    assert.equal(page.items.length, 20);
    assert.ok(page.nextCursor);
  });
});
