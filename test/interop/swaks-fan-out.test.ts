import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startPostroom, type Postroom } from '../../src/app.js';
import { buildParsedView } from '../../src/mime/parsed-view.js';
import { grant, NETWORK } from '../../src/domain/acl.js';
import { searchDocuments } from '../../src/domain/folders/documents.js';
import { createObject } from '../../src/domain/objects/store.js';
import { createEnum, createProject } from '../../src/domain/tracker/setup.js';
import { workflowDefinition } from '../../src/domain/workflows/definition.js';
import { createWorkflow, listProcesses } from '../../src/domain/workflows/store.js';
import { deliveryId } from '../../src/store/deliveries.js';
import { requirePeer, skipWithout, tempDir, waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { pySmtpSink, type SunkMessage } from '../helpers/py-smtp-sink.js';
import { swaks } from '../helpers/swaks.js';

/**
 * Several envelope recipients that one route takes, in ONE SMTP transaction sent by swaks to a
 * whole Postroom: every recipient gets what it would get alone (its own document, spool pair,
 * group post, process, work package), and a target that takes several recipients in one call
 * (webhook, forward) carries each with its own captures. Until routing planned one delivery per
 * route, target and destination, the route's recipients were folded into one delivery with the
 * first recipient's captures, and the others were dropped without an error.
 */

interface DeliveryJson {
  id: string;
  route: string;
  status: string;
  recipients: string[];
  captures: Record<string, string>;
  recipientCaptures?: Record<string, Record<string, string>>;
  destination?: string;
}

type Sink = Awaited<ReturnType<typeof pySmtpSink>>;

/** A loopback HTTP server that answers 200 and records every POST body. */
async function hookServer() {
  const bodies: Buffer[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/in`,
    docs: () => bodies.map((b) => JSON.parse(b.toString('utf8')) as { deliveryId: string; message: { id: string }; routed: { recipient: string; captures: Record<string, string> }[]; envelope: { recipients: string[] } }),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The group a relayed copy came from, by its List-Id (RFC 2919). */
const listOf = (m: SunkMessage) => /^List-Id: .*<([^>]+)>\r?$/m.exec(m.raw.toString('latin1'))?.[1];

/** Files of a directory, hidden ones (being written) left out. */
function files(dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => !f.startsWith('.')).sort();
  } catch {
    return [];
  }
}

/** Shared by both Postrooms below: send with swaks, find the kept message, wait until it settled, read its deliveries. */
function driver(get: () => TestPostroom) {
  const deliveries = async (id: string): Promise<DeliveryJson[]> => {
    const res = await get().api(`/api/v1/deliveries?message=${id}&limit=500`);
    assert.equal(res.status, 200);
    return ((await res.json()) as { items: DeliveryJson[] }).items;
  };
  return {
    deliveries,
    /** One swaks transaction to all of `to`; resolves with the kept message's id. */
    async send(to: string[], args: string[] = []): Promise<{ id: string; messageId: string }> {
      const pr = get();
      const run = await swaks(pr.smtpPort, ['--from', 'ann@members.test', '--to', to.join(','), ...args]);
      assert.equal(run.code, 0, run.out);
      for (const r of to) assert.ok(run.out.includes(`RCPT TO:<${r}>`), `swaks named <${r}>`);
      const messageId = /^ -> Message-Id: (<[^>]+>)/im.exec(run.out)?.[1];
      assert.ok(messageId, 'swaks printed the Message-Id it sent');
      const row = await waitFor(
        () => pr.db.kysely.selectFrom('messages').select('id').where('message_id', '=', messageId).executeTakeFirst(),
        `message ${messageId} kept`,
      );
      return { id: row.id, messageId };
    },
    /** Wait until every delivery of the message is done (status delivered). */
    async delivered(id: string, ms = 30_000): Promise<DeliveryJson[]> {
      const pr = get();
      await waitFor(async () => {
        const m = await pr.db.kysely.selectFrom('messages').select(['status', 'error']).where('id', '=', id).executeTakeFirstOrThrow();
        if (m.status === 'failed') throw new Error(`message ${id} failed: ${m.error}`);
        return m.status === 'delivered';
      }, `message ${id} delivered`, ms);
      return deliveries(id);
    },
  };
}

describe('one swaks transaction, three recipients on one route: each gets what it would get alone', { skip: skipWithout('fan-out', 'swaks', 'aiosmtpd') }, () => {
  let pr: TestPostroom;
  let relaySink: Sink;
  let upstream: Sink;
  let hook: Awaited<ReturnType<typeof hookServer>>;
  const spool = tempDir('postroom-fan-out-spool-');
  const { send, delivered, deliveries } = driver(() => pr);

  before(async () => {
    relaySink = await pySmtpSink(['250']);
    upstream = await pySmtpSink(['250']);
    hook = await hookServer();
    pr = await startTestPostroom({
      objects: { prefix: 'ogo', domain: 'example.org' },
      delivery: { pollInterval: '50ms' },
      groups: { relay: { host: '127.0.0.1', port: relaySink.port, starttls: 'never' } },
      routes: [
        {
          name: 'fax',
          match: { recipient: '/^(?<number>\\d+)@fax$/' },
          deliver: [{ spool: { dir: spool.dir, format: 'txt', control: { to: { number: '<%number%>' } } } }],
        },
        { name: 'lists', match: { recipient: '*@lists.test' }, deliver: [{ group: {} }] },
        { name: 'tracker', match: { recipient: '{project}@tracker.test' }, deliver: [{ workpackage: { project: '<%project%>', no_permission_check: true } }] },
        { name: 'hook', match: { recipient: 'hook+{tag}@hooks.test' }, deliver: [{ webhook: { url: hook.url, allowPrivate: true } }] },
        { name: 'relay', match: { recipient: 'relay+{tag}@relay.test' }, deliver: [{ forward: { host: '127.0.0.1', port: upstream.port, starttls: 'never', helo: 'postroom.test' } }] },
      ],
    });
  });
  after(async () => {
    await pr?.close();
    await relaySink?.close();
    await upstream?.close();
    await hook?.close();
    spool.cleanup();
  });

  /** `n` new folders, each with a network read-write grant (what mail needs to file into one). */
  async function folders(n: number, tag: string): Promise<number[]> {
    const ids: number[] = [];
    for (let i = 0; i < n; i++) {
      const f = await createObject(pr.db.kysely, { kind: 'folder', name: `${tag}-${i}`, properties: {} });
      await grant(pr.db.kysely, f.id, NETWORK, 'rw');
      ids.push(f.id);
    }
    return ids;
  }
  const docsIn = (folder: number) => searchDocuments(pr.db.kysely, { folder, limit: 10 });

  test('folder: ogo+A@, ogo+B@, ogo+C@ file one document into each of the three folders', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const ids = await folders(3, 'three');
    const { id } = await send(ids.map((f) => `ogo+${f}@example.org`));
    const ds = await delivered(id);
    for (const f of ids) assert.equal((await docsIn(f)).length, 1, `folder ${f} has its document`);
    assert.deepEqual(
      ds.map((d) => d.captures.objectId).sort(),
      ids.map(String).sort(),
      'one delivery per folder, each with its own objectId',
    );
  });

  test('folder: one folder under two addresses (ogo+N@, ogo+0N@) is one document; a third address its own', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const [same, other] = await folders(2, 'spellings');
    const { id } = await send([`ogo+${same}@example.org`, `ogo+0${same}@example.org`, `ogo+${other}@example.org`]);
    const ds = await delivered(id);
    assert.equal((await docsIn(same)).length, 1, 'one document for both spellings');
    assert.equal((await docsIn(other)).length, 1);
    assert.equal(ds.length, 2);
    const both = ds.find((d) => d.recipients.length === 2);
    assert.deepEqual(both?.recipients, [`ogo+${same}@example.org`, `ogo+0${same}@example.org`]);
    assert.deepEqual(both?.recipientCaptures, { [`ogo+${same}@example.org`]: { objectId: String(same) }, [`ogo+0${same}@example.org`]: { objectId: `0${same}` } });
  });

  test('spool: 111@fax, 222@fax, 333@fax write three .txt/.ctl pairs with number=111, 222, 333', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const { id } = await send(['111@fax', '222@fax', '333@fax'], ['--header', 'Subject: three faxes', '--body', 'Fax body.']);
    await delivered(id);
    const mine = files(spool.dir).filter((f) => f.includes(id));
    const ctls = mine.filter((f) => f.endsWith('.ctl'));
    assert.equal(ctls.length, 3, mine.join(' '));
    assert.equal(mine.filter((f) => f.endsWith('.txt')).length, 3, mine.join(' '));
    const numbers = ctls.map((f) => /^number=(.*)$/m.exec(readFileSync(path.join(spool.dir, f), 'utf8'))?.[1]).sort();
    assert.deepEqual(numbers, ['111', '222', '333']);
    for (const f of mine.filter((x) => x.endsWith('.txt'))) assert.match(readFileSync(path.join(spool.dir, f), 'utf8'), /Fax body\./);
  });

  test('group: dev@, ops@, qa@ each get a post, relayed to each group\'s own members', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const groups: Record<string, { id: number; members: string[] }> = {};
    for (const [name, only] of [['dev', 'dora'], ['ops', 'olaf'], ['qa', 'quinn']]) {
      const members = ['ann@members.test', `${only}@members.test`];
      const res = await pr.api('/api/v1/groups', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name, address: `${name}@lists.test`, members: members.map((email) => ({ email })) }),
      });
      assert.equal(res.status, 201, await res.clone().text());
      groups[name] = { id: ((await res.json()) as { id: number }).id, members };
    }
    const before = relaySink.messages().length;
    const { id, messageId } = await send(['dev@lists.test', 'ops@lists.test', 'qa@lists.test'], ['--header', 'Subject: to three lists']);
    await delivered(id);
    for (const [name, g] of Object.entries(groups)) {
      const posts = ((await (await pr.api(`/api/v1/groups/${g.id}/posts`)).json()) as { items: { messageId: string; status: string }[] }).items;
      assert.deepEqual(posts.map((p) => [p.messageId, p.status]), [[messageId, 'relayed']], `group ${name} has the post`);
    }
    const copies = relaySink.messages().slice(before);
    assert.equal(copies.length, 6, 'two members in each of three groups');
    for (const name of Object.keys(groups)) {
      const got = copies.filter((m) => listOf(m) === `${name}.lists.test`).flatMap((m) => m.rcptTo).sort();
      assert.deepEqual(got, groups[name].members, `the members of ${name} got its copy`);
    }
  });

  test('workflow: ogo+wf+A@, ogo+wf+B@, ogo+wf+C@ start one process of each of the three workflows', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const names = ['fan-count', 'fan-lines', 'fan-bytes'];
    const wfs = [];
    for (const name of names) {
      const w = await createWorkflow(pr.db, workflowDefinition.parse({ name, action: { command: ['wc', '-c'] } }));
      await grant(pr.db.kysely, w.id, NETWORK, 'r');
      wfs.push(w);
    }
    const { id } = await send(names.map((n) => `ogo+wf+${n}@example.org`));
    await delivered(id);
    for (const w of wfs) {
      const ps = await listProcesses(pr.db.kysely, { workflow: w.id, limit: 10 });
      assert.deepEqual(ps.map((p) => [p.message, p.state]), [[id, 'completed']], `workflow ${w.name} ran once`);
    }
  });

  test('workpackage: alpha@, beta@, gamma@tracker.test make one work package in each of three projects', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const projects = ['alpha', 'beta', 'gamma'];
    for (const p of projects) await createProject(pr.db, { identifier: p, name: `Project ${p}` });
    for (const kind of ['type', 'status', 'priority'] as const) await createEnum(pr.db, kind, { name: `Default ${kind}`, isDefault: true });
    const { id } = await send(projects.map((p) => `${p}@tracker.test`), ['--header', 'Subject: one for each project', '--body', 'Please look.']);
    await delivered(id);
    const res = await pr.api('/api/v1/tracker/work-packages?limit=500');
    assert.equal(res.status, 200);
    const wps = ((await res.json()) as { items: { project: { identifier: string }; subject: string }[] }).items.filter((w) => w.subject === 'one for each project');
    assert.deepEqual(wps.map((w) => w.project.identifier).sort(), projects);
  });

  test('webhook: ONE POST whose `routed` lists the three recipients, each with its own captures', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const to = ['hook+a@hooks.test', 'hook+b@hooks.test', 'hook+c@hooks.test'];
    const { id } = await send(to);
    const [d, ...more] = await delivered(id);
    assert.equal(more.length, 0, 'one delivery');
    assert.deepEqual(d.recipients, to);
    assert.deepEqual(d.recipientCaptures, { [to[0]]: { tag: 'a' }, [to[1]]: { tag: 'b' }, [to[2]]: { tag: 'c' } });
    const posts = hook.docs().filter((doc) => doc.message.id === id);
    assert.equal(posts.length, 1, 'one POST');
    assert.deepEqual(posts[0].envelope.recipients, to);
    assert.deepEqual(posts[0].routed, [
      { recipient: to[0], captures: { tag: 'a' } },
      { recipient: to[1], captures: { tag: 'b' } },
      { recipient: to[2], captures: { tag: 'c' } },
    ]);
  });

  test('forward: one SMTP transaction upstream (aiosmtpd) with the three recipients as RCPT TO', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const to = ['relay+a@relay.test', 'relay+b@relay.test', 'relay+c@relay.test'];
    const before = upstream.messages().length;
    const { id, messageId } = await send(to);
    const [d, ...more] = await delivered(id);
    assert.equal(more.length, 0, 'one delivery');
    assert.deepEqual(d.recipientCaptures, { [to[0]]: { tag: 'a' }, [to[1]]: { tag: 'b' }, [to[2]]: { tag: 'c' } });
    const got = upstream.messages().slice(before);
    assert.equal(got.length, 1, 'one transaction');
    assert.deepEqual(got[0].rcptTo, to);
    assert.ok(got[0].raw.toString('latin1').includes(messageId));
  });

  test('a fan-out of 50 folders in one transaction: each folder gets exactly one document', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const ids = await folders(50, 'fifty');
    const { id } = await send(ids.map((f) => `ogo+${f}@example.org`));
    const ds = await delivered(id, 120_000);
    assert.equal(ds.length, 50);
    assert.deepEqual(ds.flatMap((d) => d.recipients).sort(), ids.map((f) => `ogo+${f}@example.org`).sort());
    for (const f of ids) assert.equal((await docsIn(f)).length, 1, `folder ${f}`);
  });

  test('a retransmission, a second plan and a replay of a delivery deliver nobody twice', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const ids = await folders(3, 'replay');
    const to = ids.map((f) => `ogo+${f}@example.org`);
    // The exact bytes twice (--no-data-fixup): the client retransmits after a lost 250.
    const file = path.join(pr.dir, 'replay.eml');
    writeFileSync(file, ['From: ann@members.test', 'Subject: replay', `Message-ID: <fan-out-replay-${Date.now()}@members.test>`, '', 'once each', '.', ''].join('\r\n'));
    const args = ['--no-data-fixup', '--data', `@${file}`];
    const first = await swaks(pr.smtpPort, ['--from', 'ann@members.test', '--to', to.join(','), ...args]);
    assert.equal(first.code, 0, first.out);
    const messageId = /^Message-ID: (<[^>]+>)/m.exec(readFileSync(file, 'utf8'))![1];
    const { id } = await waitFor(() => pr.db.kysely.selectFrom('messages').select('id').where('message_id', '=', messageId).executeTakeFirst(), 'kept');
    const ds = await delivered(id);
    assert.equal(ds.length, 3);
    const again = await swaks(pr.smtpPort, ['--from', 'ann@members.test', '--to', to.join(','), ...args]);
    assert.equal(again.code, 0, again.out);

    // Planned again, as the start-up sweep would after a crash: the same ids, nothing inserted.
    const planned = await pr.router.plan(await buildParsedView(pr, id));
    assert.deepEqual(planned.map((p) => deliveryId(id, p.route, p.targetIndex, p.destination)).sort(), ds.map((d) => d.id).sort());
    assert.deepEqual(await pr.queue.enqueue(id, planned), []);

    // The operator replays one delivery: it runs again under its own id and files nothing new.
    const res = await pr.api(`/api/v1/deliveries/${ds[1].id}/retry`, { method: 'POST' });
    assert.equal(res.status, 200, await res.clone().text());
    await waitFor(async () => {
      const rows = await pr.db.kysely.selectFrom('delivery_attempts').select('id').where('delivery', '=', ds[1].id).execute();
      return rows.length >= 2;
    }, 'the replayed attempt');
    await delivered(id);
    assert.equal((await pr.db.kysely.selectFrom('messages').select('id').where('message_id', '=', messageId).execute()).length, 1, 'the retransmission is the same message');
    assert.equal((await deliveries(id)).length, 3);
    for (const f of ids) assert.equal((await docsIn(f)).length, 1, `folder ${f}`);
  });
});

describe('a Postroom stopped mid-fan-out and started again delivers each recipient once', { skip: skipWithout('fan-out restart', 'swaks', 'aiosmtpd') }, () => {
  let pr: TestPostroom;
  let restarted: Postroom | undefined;
  let deferring: Sink;
  let accepting: Sink;
  const { send, delivered } = driver(() => pr);

  before(async () => {
    // The first DATA is accepted, every later one deferred (450): one member of one group has
    // its copy, every other copy waits when the Postroom stops.
    deferring = await pySmtpSink(['250', '450']);
    accepting = await pySmtpSink(['250']);
    pr = await startTestPostroom({
      delivery: { pollInterval: '50ms' },
      groups: { relay: { host: '127.0.0.1', port: deferring.port, starttls: 'never' } },
      routes: [{ name: 'lists', match: { recipient: '*@lists.test' }, deliver: [{ group: {} }], retry: { schedule: ['200ms'], maxAttempts: 1000, jitter: 0 } }],
    });
  });
  after(async () => {
    await pr?.close();
    await deferring?.close();
    await accepting?.close();
  });

  test('three groups, relay deferring: stop with one copy sent, restart with the relay back; every member of every group has exactly one copy', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const members: Record<string, string[]> = {};
    for (const name of ['red', 'green', 'blue']) {
      members[name] = ['ann@members.test', `${name}1@members.test`, `${name}2@members.test`];
      const res = await pr.api('/api/v1/groups', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name, address: `${name}@lists.test`, members: members[name].map((email) => ({ email })) }),
      });
      assert.equal(res.status, 201, await res.clone().text());
    }
    const { id } = await send(['red@lists.test', 'green@lists.test', 'blue@lists.test'], ['--header', 'Subject: mid fan-out']);
    // Every group's delivery tried and waiting; its post stored; the relay has deferred some.
    await waitFor(async () => {
      const ds = await pr.db.kysely.selectFrom('deliveries').select(['status', 'attempts']).where('message', '=', id).execute();
      const posts = await pr.db.kysely.selectFrom('group_posts').select('id').where('message', '=', id).execute();
      return ds.length === 3 && ds.every((d) => d.status === 'pending' && d.attempts >= 1) && posts.length === 3 && deferring.messages().some((m) => m.reply === '450');
    }, 'three posts stored and their relays deferred', 30_000);
    await pr.stop();
    const sentBefore = deferring.messages().filter((m) => m.reply === '250');
    assert.equal(sentBefore.length, 1, 'one copy got through before the stop');

    // The relay is back (at another address), the same data directory and store.
    const config = pr.config;
    config.groups.relay = { ...config.groups.relay!, port: accepting.port };
    restarted = await startPostroom(config, { log: pr.log });
    pr.stop = () => restarted!.stop();
    pr.db = restarted.db;
    await delivered(id, 60_000);

    const copies = [...sentBefore, ...accepting.messages()];
    for (const [name, want] of Object.entries(members)) {
      const got = copies.filter((m) => listOf(m) === `${name}.lists.test`).flatMap((m) => m.rcptTo).sort();
      assert.deepEqual(got, [...want].sort(), `each member of ${name} has exactly one copy`);
    }
    assert.equal(copies.length, 9);
    const posts = await pr.db.kysely.selectFrom('group_posts').select(['group_id', 'status']).where('message', '=', id).execute();
    assert.equal(posts.length, 3, 'one post per group');
    assert.ok(posts.every((p) => p.status === 'relayed'), JSON.stringify(posts));
  });
});
