import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { classifyRecipient, bounceAddress } from '../../src/domain/groups/addresses.js';
import { threadSubject } from '../../src/domain/groups/posts.js';
import { skipWithout, waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { pySmtpSink } from '../helpers/py-smtp-sink.js';
import { RawSmtp } from '../helpers/swaks.js';

type Sink = Awaited<ReturnType<typeof pySmtpSink>>;

const mail = (o: { id: string; subject: string; from?: string; extra?: string[]; date?: string }) =>
  [
    `From: ${o.from ?? 'ann@members.test'}`,
    'To: talk@lists.test',
    `Subject: ${o.subject}`,
    `Message-ID: <${o.id}@members.test>`,
    ...(o.date ? [`Date: ${o.date}`] : []),
    'Reply-To: ann-private@members.test',
    'List-Id: <some.other.list>',
    ...(o.extra ?? []),
    '',
    'hello group',
    '',
  ].join('\r\n');

// Every case relays through the aiosmtpd sink the suite starts.
describe('discussion groups', { skip: skipWithout('discussion groups', 'aiosmtpd') }, () => {
  let pr: TestPostroom;
  let sink: Sink;
  let group: { id: number };

  before(async () => {
    sink = await pySmtpSink(['250']);
    pr = await startTestPostroom({
      smtp: { domains: ['lists.test'] },
      http: { publicUrl: 'https://mail.example.org' },
      delivery: { pollInterval: '50ms' },
      groups: { relay: { host: '127.0.0.1', port: sink.port, starttls: 'never' }, bounceLimit: 2 },
      routes: [{ name: 'groups', match: { recipient: '*@lists.test' }, deliver: [{ group: {} }], retry: { schedule: ['100ms'], maxAttempts: 5, jitter: 0 } }],
    });
    const res = await pr.api('/api/v1/groups', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'Talk "about" things',
        address: 'Talk@Lists.test',
        members: [{ email: 'ann@members.test' }, { email: 'bob@members.test', name: 'Bob' }, { email: 'cy@members.test' }, { email: 'quiet@members.test', delivery: false }],
      }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    group = (await res.json()) as { id: number };
  });
  after(async () => {
    await pr?.close();
    await sink?.close();
  });

  const inbound = (rcpt: string, sender: string, raw: string, time = 'server') =>
    pr.api(`/api/v1/inbound?recipient=${encodeURIComponent(rcpt)}&sender=${encodeURIComponent(sender)}&time=${time}`, {
      method: 'POST',
      headers: { 'content-type': 'message/rfc822' },
      body: raw,
    });
  const posts = async () => ((await (await pr.api(`/api/v1/groups/${group.id}/posts`)).json()) as { items: any[] }).items;
  const member = async (email: string) => (await (await pr.api(`/api/v1/groups/${group.id}/members/${email}`)).json()) as { bounces: number; suspended: boolean; delivery: boolean };

  it('VERP addresses name the member; subjects thread without Re:/Fwd:/[tags]', () => {
    assert.equal(bounceAddress('talk@lists.test', 'j.d+x=y@members.test'), 'talk+bounces-j.d+x=y=members.test@lists.test');
    assert.deepEqual(classifyRecipient('talk+bounces-j.d+x=y=members.test@lists.test'), { kind: 'bounce', list: 'talk@lists.test', member: 'j.d+x=y@members.test' });
    assert.deepEqual(classifyRecipient('TALK+unsubscribe@lists.test'), { kind: 'unsubscribe', list: 'talk@lists.test' });
    assert.equal(threadSubject('Re: AW: [talk] Fwd[2]: The  Plan'), 'the plan');
  });

  it('a post from a member is kept, threaded and relayed to each member with delivery on, with list headers and a VERP return path', async () => {
    const res = await inbound('talk@lists.test', 'ann@members.test', mail({ id: 'root', subject: 'The plan' }));
    assert.equal(res.status, 202);
    const got = await waitFor(() => (sink.messages().length >= 3 ? sink.messages() : undefined), 'three relayed copies');
    assert.deepEqual(got.map((m) => m.rcptTo[0]).sort(), ['ann@members.test', 'bob@members.test', 'cy@members.test']);
    for (const m of got) {
      const [user, host] = m.rcptTo[0].split('@');
      assert.equal(m.mailFrom, `talk+bounces-${user}=${host}@lists.test`);
      const head = m.raw.toString('latin1').split('\r\n\r\n')[0];
      assert.match(head, /^List-Id: "Talk \\"about\\" things" <talk\.lists\.test>$/m);
      assert.match(head, /^List-Post: <mailto:talk@lists\.test>$/m);
      assert.match(head, /^List-Unsubscribe: <mailto:talk\+unsubscribe@lists\.test\?subject=unsubscribe>$/m);
      assert.match(head, new RegExp(`^List-Archive: <https://mail\\.example\\.org/api/v1/groups/${group.id}/posts\\?thread=\\d+>$`, 'm'));
      assert.match(head, /^Precedence: list$/m);
      assert.match(head, /^Reply-To: <talk@lists\.test>$/m);
      assert.doesNotMatch(head, /ann-private|some\.other\.list/);
      assert.match(head, /^Received: /m);
    }
    // The post is marked relayed just after the last copy is handed over: wait for that, not the sink.
    const p = await waitFor(async () => (await posts()).find((x) => x.status === 'relayed'), 'the post marked relayed');
    assert.equal(p.thread, p.id);
  });

  it('replies join the thread by In-Reply-To, by References, and by subject when neither is sent', async () => {
    const [root] = await posts();
    // One at a time: this is about the threading rules; the next test sends posts all at once.
    const post = async (from: string, m: string, n: number) => {
      await inbound('talk@lists.test', from, m);
      return waitFor(async () => {
        const ps = await posts();
        return ps.length === n && ps.every((x) => x.status === 'relayed') ? ps : undefined;
      }, `${n} posts, relayed`);
    };
    await post('bob@members.test', mail({ id: 'r1', from: 'bob@members.test', subject: 'Re: The plan', extra: ['In-Reply-To: <root@members.test>'] }), 2);
    await post('cy@members.test', mail({ id: 'r2', from: 'cy@members.test', subject: 'other words', extra: ['References: <root@members.test> <r1@members.test>'] }), 3);
    await post('ann@members.test', mail({ id: 'r3', subject: 'AW: [talk] the PLAN' }), 4);
    const all = await post('ann@members.test', mail({ id: 'n1', subject: 'Something else' }), 5);
    const by = (id: string) => all.find((p) => p.messageId === `<${id}@members.test>`);
    assert.equal(by('r1').parent, root.id);
    assert.equal(by('r2').parent, by('r1').id);
    assert.equal(by('r3').thread, root.id);
    assert.equal(by('n1').thread, by('n1').id);
    const thread = ((await (await pr.api(`/api/v1/groups/${group.id}/posts?thread=${root.id}`)).json()) as { items: unknown[] }).items;
    assert.equal(thread.length, 4);
  });

  it('posts arriving at once thread as they would one at a time, whichever is handled first', async () => {
    // A group of its own, so its posts are just these. Everything below is sent at once: the
    // delivery worker handles them concurrently, in no particular order.
    const res = await pr.api('/api/v1/groups', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Chat', address: 'chat@lists.test', members: [{ email: 'ann@members.test' }, { email: 'bob@members.test' }] }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const chat = ((await res.json()) as { id: number }).id;
    const m = (id: string, subject: string, extra: string[] = []) => mail({ id, subject, extra }).replace('To: talk@', 'To: chat@');
    const batch = [
      // A new topic with replies by In-Reply-To, by References (its nearest is c-a) and by subject.
      m('c-root', 'Lunch on Friday'),
      m('c-a', 'count me in', ['In-Reply-To: <c-root@members.test>']),
      m('c-b', 'and me', ['References: <c-root@members.test> <c-a@members.test>']),
      m('c-c', 'Re: lunch on friday'),
      m('c-d', 'vegetarian?', ['In-Reply-To: <c-a@members.test>', 'References: <c-root@members.test> <c-a@members.test>']),
      // A second topic, threaded by subject only.
      m('d-root', 'Rota'),
      m('d-a', 'Re: Rota'),
      m('d-b', 'AW: [chat] rota'),
    ];
    const answers = await Promise.all(batch.map((raw) => inbound('chat@lists.test', 'ann@members.test', raw)));
    assert.deepEqual(answers.map((a) => a.status), batch.map(() => 202));
    const list = async () => ((await (await pr.api(`/api/v1/groups/${chat}/posts`)).json()) as { items: any[] }).items;
    const all = await waitFor(async () => {
      const ps = await list();
      return ps.length === batch.length && ps.every((x) => x.status === 'relayed') ? ps : undefined;
    }, `${batch.length} posts, relayed`, 30_000);
    const by = (id: string) => all.find((p) => p.messageId === `<${id}@members.test>`);
    const threadOf = (ids: string[]) => new Set(ids.map((id) => by(id).thread));
    assert.equal(threadOf(['c-root', 'c-a', 'c-b', 'c-c', 'c-d']).size, 1, JSON.stringify(all));
    assert.equal(threadOf(['d-root', 'd-a', 'd-b']).size, 1, JSON.stringify(all));
    assert.notEqual(by('c-root').thread, by('d-root').thread);
    // Message-ID links win over arrival order: a reply handled before its parent is adopted.
    assert.equal(by('c-a').parent, by('c-root').id);
    assert.equal(by('c-b').parent, by('c-a').id);
    assert.equal(by('c-d').parent, by('c-a').id);
    // The thread listing has both threads whole.
    for (const [root, n] of [['c-root', 5], ['d-root', 3]] as const) {
      const thread = ((await (await pr.api(`/api/v1/groups/${chat}/posts?thread=${by(root).thread}`)).json()) as { items: unknown[] }).items;
      assert.equal(thread.length, n);
    }
  });

  it('refuses a non-member under the members policy: 550 5.7.1 at RCPT, 403 5.7.1 over HTTP; an unknown group is 5.1.1', async () => {
    const res = await inbound('talk@lists.test', 'stranger@else.test', mail({ id: 'x1', from: 'stranger@else.test', subject: 'hi' }));
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { enhancedStatus: string }).enhancedStatus, '5.7.1');
    const smtp = await RawSmtp.connect(pr.smtpPort);
    try {
      await smtp.reply();
      await smtp.cmd('EHLO client.test');
      await smtp.cmd('MAIL FROM:<stranger@else.test>');
      assert.match(await smtp.cmd('RCPT TO:<talk@lists.test>'), /^550 5\.7\.1 /);
      assert.match(await smtp.cmd('RCPT TO:<nosuch@lists.test>'), /^550 5\.1\.1 /);
      await smtp.cmd('RSET');
      await smtp.cmd('MAIL FROM:<>');
      assert.match(await smtp.cmd('RCPT TO:<talk+bounces-bob=members.test@lists.test>'), /^250 /);
    } finally {
      smtp.close();
    }
  });

  it('a bounce at a VERP address counts against that member; at the limit the member is suspended and gets no copies', async () => {
    for (let i = 1; i <= 2; i++) {
      const res = await inbound('talk+bounces-cy=members.test@lists.test', '', mail({ id: `bounce${i}`, from: 'MAILER-DAEMON@members.test', subject: 'Undelivered Mail' }));
      assert.equal(res.status, 202);
      await waitFor(async () => (await member('cy@members.test')).bounces === i, `bounce ${i} counted`);
    }
    assert.equal((await member('cy@members.test')).suspended, true);
    const before = sink.messages().length;
    await inbound('talk@lists.test', 'ann@members.test', mail({ id: 'after-suspend', subject: 'Later' }));
    await waitFor(async () => (await posts()).find((p) => p.messageId === '<after-suspend@members.test>')?.status === 'relayed', 'relayed');
    const fresh = sink.messages().slice(before).map((m) => m.rcptTo[0]);
    assert.deepEqual(fresh.sort(), ['ann@members.test', 'bob@members.test']);
    // Resetting the count lifts the suspension.
    const reset = await pr.api(`/api/v1/groups/${group.id}/members/cy@members.test`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"bounces":0}' });
    assert.deepEqual(await reset.json().then((m: any) => [m.bounces, m.suspended]), [0, false]);
  });

  it('a moderated group holds a non-member post until approved, then relays it; -t message takes the Date: header', async () => {
    await pr.api(`/api/v1/groups/${group.id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{"posting":"moderated","replyTo":"sender"}' });
    const date = 'Tue, 01 Sep 2026 10:00:00 +0000';
    assert.equal((await inbound('talk@lists.test', 'guest@else.test', mail({ id: 'mod1', from: 'guest@else.test', subject: 'May I?', date }), 'message')).status, 202);
    const held = await waitFor(async () => (await posts()).find((p) => p.messageId === '<mod1@members.test>' && p.status === 'held'), 'a held post');
    assert.equal(held.postedAt, new Date(date).toISOString());
    const before = sink.messages().length;
    const ok = await pr.api(`/api/v1/groups/${group.id}/posts/${held.id}/approve`, { method: 'POST' });
    assert.equal(ok.status, 200);
    await waitFor(async () => (await posts()).find((p) => p.id === held.id)?.status === 'relayed', 'approved post relayed');
    const copies = sink.messages().slice(before);
    assert.equal(copies.length, 3);
    assert.match(copies[0].raw.toString('latin1'), /^Reply-To: ann-private@members\.test$/m);
  });

  it('a post carrying the group\'s own List-Id back is a mail loop: the delivery fails with 5.4.6 and nothing is relayed', async () => {
    const before = sink.messages().length;
    const raw = mail({ id: 'looped', subject: 'Auto-forwarded' }).replace('List-Id: <some.other.list>', 'List-Id: "Talk" <talk.lists.test>');
    const res = await inbound('talk@lists.test', 'ann@members.test', raw);
    assert.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    const d = await waitFor(async () => {
      const items = ((await (await pr.api(`/api/v1/deliveries?message=${id}`)).json()) as { items: { status: string; lastError: string | null }[] }).items;
      return items.find((x) => x.status === 'failed');
    }, 'the looped delivery failed');
    assert.match(d.lastError ?? '', /^5\.4\.6 Mail loop: this message was already relayed by <talk@lists\.test>/);
    assert.equal(sink.messages().length, before, 'no copy relayed');
  });

  it('mail to LOCAL+unsubscribe@ turns the sender\'s delivery off', async () => {
    assert.equal((await inbound('talk+unsubscribe@lists.test', 'bob@members.test', mail({ id: 'unsub', from: 'bob@members.test', subject: 'unsubscribe' }))).status, 202);
    await waitFor(async () => (await member('bob@members.test')).delivery === false, 'delivery off');
  });
  it("a reply to a post's copy lands in that post's thread, also when the post came without a Message-ID (its copies carry ours)", async () => {
    const res = await pr.api('/api/v1/groups', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Forum', address: 'forum@lists.test', members: [{ email: 'ann@members.test' }, { email: 'bob@members.test' }] }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const forum = ((await res.json()) as { id: number }).id;
    const forumPosts = async () => ((await (await pr.api(`/api/v1/groups/${forum}/posts`)).json()) as { items: { id: number; thread: number; parent: number | null; messageId: string | null; status: string }[] }).items;
    const before = sink.messages().length;
    // An old client's post: no Message-ID at all.
    const bare = mail({ id: 'x', subject: 'Forum topic' }).replace('To: talk@', 'To: forum@').replace(/^Message-ID: .*\r\n/m, '');
    assert.equal((await inbound('forum@lists.test', 'ann@members.test', bare)).status, 202);
    const copies = await waitFor(() => (sink.messages().length >= before + 2 ? sink.messages().slice(before) : undefined), 'two copies of the topic');
    const ids = copies.map((c) => /^Message-ID: (<[^>]+>)$/im.exec(c.raw.toString('latin1').split('\r\n\r\n')[0])?.[1]);
    assert.ok(ids[0], 'the copy carries a Message-ID');
    assert.equal(ids[1], ids[0], 'the same on every copy');
    const topic = await waitFor(async () => (await forumPosts()).find((p) => p.status === 'relayed'), 'the topic relayed');
    assert.equal(topic.messageId, ids[0], "the post records the Message-ID its copies carry");
    // Bob answers the copy he received, with a subject of his own.
    const reply = mail({ id: 'fr1', from: 'bob@members.test', subject: 'my answer', extra: [`In-Reply-To: ${ids[0]}`] }).replace('To: talk@', 'To: forum@');
    assert.equal((await inbound('forum@lists.test', 'bob@members.test', reply)).status, 202);
    const answer = await waitFor(async () => (await forumPosts()).find((p) => p.messageId === '<fr1@members.test>'), 'the reply kept');
    assert.deepEqual([answer.thread, answer.parent], [topic.id, topic.id]);
  });
});
