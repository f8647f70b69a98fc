import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requirePeer, waitFor } from '../helpers/env.js';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { swaks } from '../helpers/swaks.js';

/** The deliveries a message got, as 'route recipients'. */
async function deliveriesOf(pr: TestPostroom, id: string): Promise<string[]> {
  const rows = await pr.db.kysely.selectFrom('deliveries').select(['route', 'recipients']).where('message', '=', id).execute();
  return rows.map((r) => `${r.route} ${(JSON.parse(r.recipients) as string[]).join(',')}`).sort();
}

/** The message kept for a swaks run ('250 2.0.0 Ok: kept as ID'). */
function keptId(out: string): string {
  const m = /kept as (\S+)/.exec(out);
  assert.ok(m, out);
  return m[1];
}

/** Wait until a message is planned (has deliveries, or was found to be a duplicate with none). */
async function planned(pr: TestPostroom, id: string) {
  return waitFor(async () => {
    const m = await pr.db.kysely.selectFrom('messages').select(['duplicate_of', 'error', 'parsed_at']).where('id', '=', id).executeTakeFirst();
    if (!m?.parsed_at) return undefined;
    const d = await deliveriesOf(pr, id);
    return d.length || m.duplicate_of ? { ...m, deliveries: d } : undefined;
  }, `message ${id} planned`);
}

/**
 * The same message through two relays differs only in its trace fields. Sent here with swaks
 * byte for byte, each copy with the trace fields its relay would have added.
 */
describe('copies of one message through two relays are delivered once (swaks)', () => {
  let pr: TestPostroom;
  before(async () => {
    pr = await startTestPostroom({
      routes: [
        { name: 'inbox', match: { recipient: '/@example\\.org$/' }, deliver: [{ discard: {} }] },
        { name: 'every-copy', dedup: false, match: { recipient: '/@nodedup\\.example$/' }, deliver: [{ discard: {} }] },
      ],
      delivery: { pollInterval: '50ms' },
    });
  });
  after(() => pr.close());

  let n = 0;
  async function send(rcpts: string[], raw: string) {
    const file = path.join(pr.dir, `copy-${n++}.eml`);
    writeFileSync(file, `${raw.replace(/\n/g, '\r\n')}\r\n.\r\n`);
    const run = await swaks(pr.smtpPort, ['--from', 'alice@sender.example', '--to', rcpts.join(','), '--no-data-fixup', '--data', `@${file}`]);
    assert.equal(run.code, 0, run.out);
    return keptId(run.out);
  }
  const message = (id: string, trace: string, body = 'The same words, twice.') =>
    `${trace}From: Alice <alice@sender.example>\nTo: team@example.org\nSubject: once only\nMessage-ID: <${id}@sender.example>\nDate: Mon, 7 Dec 2026 01:00:00 +0000\n\n${body}\n`;
  const viaA = 'Received: from relay-a.example (relay-a [192.0.2.1]) by mx.example with ESMTP id AAA\n\tfor <team@example.org>; Mon, 7 Dec 2026 01:00:01 +0000\nReturn-Path: <alice@sender.example>\n';
  const viaB = 'X-Original-To: team@example.org\nReceived: from relay-b.example (relay-b [192.0.2.2]) by mx.example with ESMTP id BBB; Mon, 7 Dec 2026 01:00:05 +0000\nReceived: from relay-b-inner by relay-b with LMTP; Mon, 7 Dec 2026 01:00:04 +0000\n';

  test('the second copy is kept, says which message it duplicates, and is not delivered again', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const first = await send(['team@example.org'], message('twice', viaA));
    assert.deepEqual((await planned(pr, first)).deliveries, ['inbox team@example.org']);
    const second = await send(['team@example.org'], message('twice', viaB));
    assert.notEqual(second, first, 'both copies are kept');
    const s = await planned(pr, second);
    assert.deepEqual(s.deliveries, []);
    assert.equal(s.duplicate_of, first);
    const res = await pr.api(`/api/v1/messages/${second}`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { duplicateOf: string | null; error: string | null };
    assert.equal(body.duplicateOf, first);
    assert.match(body.error ?? '', new RegExp(`^duplicate of ${first}`));
  });

  test('a recipient only the second copy names is delivered; the shared one is not', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const first = await send(['a@example.org', 'b@example.org'], message('overlap', viaA));
    assert.deepEqual((await planned(pr, first)).deliveries, ['inbox a@example.org,b@example.org']);
    const second = await send(['b@example.org', 'c@example.org'], message('overlap', viaB));
    const s = await planned(pr, second);
    assert.deepEqual(s.deliveries, ['inbox c@example.org']);
    assert.equal(s.duplicate_of, first);
  });

  test('a body that differs under a reused Message-ID is a new message, delivered', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const first = await send(['team@example.org'], message('reused', viaA, 'Version one.'));
    await planned(pr, first);
    const second = await send(['team@example.org'], message('reused', viaB, 'Version two.'));
    const s = await planned(pr, second);
    assert.deepEqual(s.deliveries, ['inbox team@example.org']);
    assert.equal(s.duplicate_of, null);
  });

  test('a route with dedup: false delivers every copy', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const first = await send(['x@nodedup.example'], message('every', viaA));
    await planned(pr, first);
    const second = await send(['x@nodedup.example'], message('every', viaB));
    assert.deepEqual((await planned(pr, second)).deliveries, ['every-copy x@nodedup.example']);
  });
});

describe('copies past the dedup window are delivered again (swaks)', () => {
  let pr: TestPostroom;
  before(async () => {
    pr = await startTestPostroom({
      routes: [{ name: 'inbox', match: { recipient: '/@example\\.org$/' }, deliver: [{ discard: {} }] }],
      delivery: { pollInterval: '50ms', dedupWindow: '1s' },
    });
  });
  after(() => pr.close());

  test('after the window the same message is delivered again', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const raw = (hop: string) => `Received: from ${hop} by mx; Mon, 7 Dec 2026 01:00:00 +0000\r\nMessage-ID: <late@x>\r\nSubject: late\r\n\r\nbody\r\n.\r\n`;
    const send = async (hop: string) => {
      const file = path.join(pr.dir, `${hop}.eml`);
      writeFileSync(file, raw(hop));
      const run = await swaks(pr.smtpPort, ['--from', 'a@x.example', '--to', 'team@example.org', '--no-data-fixup', '--data', `@${file}`]);
      return keptId(run.out);
    };
    await planned(pr, await send('one'));
    await new Promise((r) => setTimeout(r, 1_500));
    assert.deepEqual((await planned(pr, await send('two'))).deliveries, ['inbox team@example.org']);
  });
});

/** The real thing: two Postfix relays in front of Postroom, the same message sent through each. */
describe('the same message relayed by two Postfix instances reaches the webhook once', () => {
  let pr: TestPostroom;
  let relays: PostfixInstance[] = [];
  let hook: http.Server;
  const posts: { messageId: string; recipients: string[] }[] = [];

  before(async () => {
    hook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const doc = JSON.parse(body) as { message: { messageId: string }; envelope: { recipients: string[] } };
        posts.push({ messageId: doc.message.messageId, recipients: doc.envelope.recipients });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/in`;
    pr = await startTestPostroom({
      routes: [{ name: 'hook', match: { recipient: '/@relay\\.test$/' }, deliver: [{ webhook: { url, allowPrivate: true } }] }],
      delivery: { pollInterval: '50ms' },
    });
  });
  after(async () => {
    for (const r of relays) await r.stop();
    await pr?.close();
    await new Promise((r) => hook.close(r));
  });

  test('two copies kept, one POST', async (t) => {
    if (!requirePeer(t, 'postfix') || !requirePeer(t, 'swaks')) return;
    const pipeEntry = 'postroom unix - n n - - pipe flags=R user=nobody argv=/bin/true';
    for (let i = 0; i < 2; i++) {
      relays.push(await startPostfix({ pipeDomain: 'pipe.test', relayDomain: 'relay.test', relayPort: pr.smtpPort, pipeEntry }));
    }
    const file = path.join(pr.dir, 'relayed.eml');
    writeFileSync(file, 'From: a@sender.example\r\nTo: desk@relay.test\r\nSubject: through two relays\r\nMessage-ID: <two-relays@sender.example>\r\nDate: Mon, 7 Dec 2026 01:00:00 +0000\r\n\r\nOnce, please.\r\n.\r\n');
    for (const relay of relays) {
      const run = await swaks(relay.port, ['--from', 'a@sender.example', '--to', 'desk@relay.test', '--no-data-fixup', '--data', `@${file}`]);
      assert.equal(run.code, 0, run.out);
    }
    // The two relays hand their copies over at about the same time: whichever is planned second
    // is the duplicate, not necessarily the one kept second.
    const kept = await waitFor(async () => {
      const rows = await pr.db.kysely.selectFrom('messages').select(['id', 'duplicate_of']).where('message_id', '=', '<two-relays@sender.example>').orderBy('id').execute();
      return rows.length === 2 && rows.some((r) => r.duplicate_of) ? rows : undefined;
    }, 'both relayed copies kept, one marked as a duplicate of the other', 60_000);
    const [dup, first] = kept[1].duplicate_of ? [kept[1], kept[0]] : [kept[0], kept[1]];
    assert.equal(dup.duplicate_of, first.id);
    assert.equal(first.duplicate_of, null);
    await waitFor(() => posts.length >= 1 || undefined, 'the webhook POST', 20_000);
    // Give a wrong second POST the time it would take to arrive.
    await new Promise((r) => setTimeout(r, 1_000));
    assert.deepEqual(posts, [{ messageId: '<two-relays@sender.example>', recipients: ['desk@relay.test'] }]);
  });
});
