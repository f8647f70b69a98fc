import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requirePeer, skipWithout, waitFor } from '../helpers/env.js';
import { PDF } from '../helpers/objects.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { pySmtpSink } from '../helpers/py-smtp-sink.js';
import { swaks } from '../helpers/swaks.js';

/**
 * Work packages end to end: swaks → SMTP → intake → parse → route → workpackage target, with
 * the tracker set up and read through the HTTP API as an operator would.
 */

interface Wp {
  id: number;
  project: { identifier: string };
  subject: string;
  description: string;
  type: string;
  status: string;
  priority: string;
  author: { login: string } | null;
  doneRatio: number;
  customValues: Record<string, string>;
  watchers: { login: string }[];
  journals: { user: { login: string } | null; notes: string; changes: { field: string; old: string | null; new: string | null }[] }[];
  attachments: { filename: string; size: number; url: string; sha256: string }[];
}

// The suite's notifications go out to an aiosmtpd sink it starts first.
describe('swaks → workpackage route', { skip: skipWithout('swaks → workpackage route', 'swaks', 'aiosmtpd') }, () => {
  let pr: TestPostroom;
  let sink: Awaited<ReturnType<typeof pySmtpSink>>;

  async function post(url: string, body: unknown, method = 'POST'): Promise<unknown> {
    const res = await pr.api(url, body === undefined ? { method } : { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.text();
    assert.ok(res.status < 300, `${method} ${url}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }
  const get = async <T>(url: string): Promise<T> => {
    const res = await pr.api(url);
    const text = await res.text();
    assert.equal(res.status, 200, `${url}: ${text}`);
    return JSON.parse(text) as T;
  };
  const wps = () => get<{ items: Wp[] }>('/api/v1/tracker/work-packages?limit=500').then((r) => r.items);
  const wp = (id: number) => get<Wp>(`/api/v1/tracker/work-packages/${id}`);
  /** Send with swaks; resolves once the message's deliveries settled. */
  async function send(args: string[]): Promise<string> {
    const run = await swaks(pr.smtpPort, args);
    assert.equal(run.code, 0, run.out);
    const messageId = /Message-Id: (<[^>]+>)/i.exec(run.out)?.[1];
    assert.ok(messageId, 'swaks printed the Message-Id it sent');
    return messageId;
  }
  async function settled(messageId: string): Promise<{ id: string; status: string; error: string | null }> {
    return waitFor(async () => {
      const row = await pr.db.kysely.selectFrom('messages').select(['id', 'status', 'error']).where('message_id', '=', messageId).executeTakeFirst();
      return row && ['delivered', 'failed'].includes(row.status) ? row : undefined;
    }, `message ${messageId} delivered or failed`);
  }

  before(async () => {
    sink = await pySmtpSink(['250']);
    pr = await startTestPostroom({
      delivery: { pollInterval: 100 },
      routes: [
        { name: 'notify', match: { recipient: 'notify@tracker.test' }, deliver: [{ workpackage: { project: 'test_project', notify: { account: 'tracker-out' } } }] },
        { name: 'support', match: { recipient: 'support@tracker.test' }, deliver: [{ workpackage: { project: 'test_project', allow_override: 'type', truncate: '--Truncate here--' } }] },
        { name: 'open', match: { recipient: 'open@tracker.test' }, deliver: [{ workpackage: { project: 'test_project', priority: 'High', no_permission_check: true } }] },
      ],
    });
    for (const u of [
      { login: 'alice', email: 'alice@example.org', name: 'Alice Adams' },
      { login: 'bob', email: 'bob@example.org' },
    ]) await post('/api/v1/tracker/users', u);
    await post('/api/v1/tracker/projects', { identifier: 'test_project', name: 'Test project' });
    for (const login of ['alice', 'bob']) await post(`/api/v1/tracker/projects/test_project/members/${login}`, undefined, 'PUT');
    for (const [segment, names] of [
      ['types', ['Bug', 'Feature']],
      ['statuses', ['New', 'Closed']],
      ['priorities', ['Normal', 'High']],
    ] as const) {
      for (const [i, name] of names.entries()) await post(`/api/v1/tracker/${segment}`, { name, isDefault: i === 0 });
    }
    await post('/api/v1/tracker/custom-fields', { name: 'Customer ref', format: 'string' });
    // Where notifications leave: a mail account whose SMTP server is the sink.
    const profile = (await post('/api/v1/email/profiles', { name: 'out', protocol: 'imap', host: '127.0.0.1', port: 1, tls: 'none', smtp: { host: '127.0.0.1', port: sink.port, tls: 'none' } })) as { id: string };
    await post('/api/v1/email/accounts', { profile: profile.id, name: 'tracker-out', username: 'tracker', password: 'unused', address: 'tracker@tracker.test' });
  });
  after(async () => {
    await pr?.close();
    await sink?.close();
  });

  let created: number;
  let firstMessageId: string;

  test('a mail with Key: value lines and an attachment becomes a work package; Cc users watch it', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const pdf = path.join(pr.dir, 'quote.pdf');
    writeFileSync(pdf, PDF);
    firstMessageId = await send([
      ...['--from', 'alice@example.org', '--to', 'support@tracker.test', '--header', 'From: Alice Adams <alice@example.org>'],
      ...['--header', 'Cc: Bob <bob@example.org>', '--header', 'Subject: Printer on fire'],
      ...['--body', 'TYPE: Feature\nCustomer Ref: ACME-7\n\nThe printer is on fire.\n--Truncate here--\nPriority: High\n'],
      ...['--attach-type', 'application/pdf', '--attach-name', 'quote.pdf', '--attach', `@${pdf}`],
    ]);
    assert.equal((await settled(firstMessageId)).status, 'delivered');
    const [made] = (await wps()).filter((w) => w.subject === 'Printer on fire');
    created = made.id;
    const w = await wp(created);
    assert.equal(w.project.identifier, 'test_project');
    assert.equal(w.type, 'Feature', 'allow_override: type');
    assert.equal(w.status, 'New', "the tracker's default status");
    assert.equal(w.priority, 'Normal', 'the line after the truncation delimiter does not count');
    assert.equal(w.description, 'The printer is on fire.');
    assert.deepEqual(w.customValues, { 'Customer ref': 'ACME-7' });
    assert.equal(w.author?.login, 'alice');
    assert.deepEqual(w.watchers.map((x) => x.login), ['bob']);
    assert.deepEqual(w.attachments.map((a) => [a.filename, a.size]), [['quote.pdf', PDF.length]]);
    const bytes = Buffer.from(await (await pr.api(w.attachments[0].url)).arrayBuffer());
    assert.ok(bytes.equals(PDF), 'the attachment downloads byte-identical');
  });

  test('a reply by [#N] with quoted text becomes a journal note and changes the status', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const id = await send([
      ...['--from', 'bob@example.org', '--to', 'support@tracker.test', '--header', `Subject: Re: [#${created}] Printer on fire`],
      ...['--body', `Status: Closed\n\nPut it out.\n\nOn Mon, 2 Mar 2026, Alice Adams wrote:\n> The printer is on fire.\n> Status: New\n`],
    ]);
    assert.equal((await settled(id)).status, 'delivered');
    const w = await wp(created);
    const last = w.journals[w.journals.length - 1];
    assert.equal(last.user?.login, 'bob');
    assert.equal(last.notes, 'Put it out.');
    assert.deepEqual(last.changes, [{ field: 'status', old: 'New', new: 'Closed' }]);
  });

  test('a reply by In-Reply-To, Outlook-quoted without >, adds a note and an attachment', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const log = path.join(pr.dir, 'fire.log');
    writeFileSync(log, 'smoke\n');
    const id = await send([
      ...['--from', 'alice@example.org', '--to', 'support@tracker.test', '--header', 'Subject: RE: Printer on fire'],
      ...['--header', `In-Reply-To: ${firstMessageId}`],
      ...['--body', 'Log attached.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\nTo: Alice\nSubject: Re: Printer\n\nStatus: New\n'],
      ...['--attach-type', 'text/plain', '--attach-name', 'fire.log', '--attach', `@${log}`],
    ]);
    assert.equal((await settled(id)).status, 'delivered');
    const w = await wp(created);
    assert.equal(w.status, 'Closed', 'the quoted Status: line changed nothing');
    assert.equal(w.journals[w.journals.length - 1].notes, 'Log attached.');
    assert.deepEqual(w.attachments.map((a) => a.filename), ['quote.pdf', 'fire.log']);
  });

  test('an unknown envelope sender is refused at RCPT: 550 5.7.1 naming the reason, nothing kept', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const before = (await wps()).length;
    const run = await swaks(pr.smtpPort, ['--from', 'mallory@evil.test', '--to', 'support@tracker.test', '--header', 'Subject: Free money', '--body', 'Click.']);
    assert.notEqual(run.code, 0, run.out);
    assert.match(run.out, /<\*\* 550 5\.7\.1 Unknown sender <mallory@evil\.test>: no tracker user has this address/);
    const kept = await pr.db.kysely.selectFrom('messages').select('id').where('subject', '=', 'Free money').execute();
    assert.deepEqual(kept, [], 'nothing kept');
    assert.equal((await wps()).length, before, 'no work package');
  });

  test('a bounce (null sender) whose From: is unknown: accepted by SMTP, then the message and its delivery fail with the reason', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const before = (await wps()).length;
    const id = await send(['--from', '<>', '--to', 'support@tracker.test', '--header', 'From: mallory@evil.test', '--header', 'Subject: Free money', '--body', 'Click.']);
    const m = await settled(id);
    assert.equal(m.status, 'failed');
    assert.match(m.error ?? '', /5\.7\.1 Unknown sender <mallory@evil\.test>/);
    const { items } = await get<{ items: { status: string; lastError: string | null }[] }>(`/api/v1/deliveries?message=${m.id}`);
    assert.deepEqual(items.map((d) => d.status), ['failed']);
    assert.match(items[0].lastError ?? '', /Unknown sender <mallory@evil\.test>: no tracker user has this address/);
    const shown = await get<{ status: string; error: string | null }>(`/api/v1/messages/${m.id}`);
    assert.match(shown.error ?? '', /Unknown sender/);
    assert.equal((await wps()).length, before, 'no work package');
  });

  test('no_permission_check: an unknown sender files as Anonymous, with the route defaults', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const id = await send(['--from', 'customer@outside.test', '--to', 'open@tracker.test', '--header', 'Subject: Hello', '--body', 'Priority: Normal\n\nHi there.']);
    assert.equal((await settled(id)).status, 'delivered');
    const w = (await wps()).find((x) => x.subject === 'Hello')!;
    assert.equal(w.author, null);
    assert.equal(w.priority, 'High', 'the route fixes the priority');
    const full = await wp(w.id);
    assert.match(full.journals[0].notes, /Priority: 'Normal' ignored: this route fixes the priority/);
  });

  test('notify: a notification with our Message-ID goes to the watchers; a reply to it (no [#N]) updates the work package and tells the author', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const first = await send([
      ...['--from', 'alice@example.org', '--to', 'notify@tracker.test', '--header', 'Cc: bob@example.org'],
      ...['--header', 'Subject: Coffee machine', '--body', 'Priority: High\n\nIt makes tea.'],
    ]);
    assert.equal((await settled(first)).status, 'delivered');
    const w = (await wps()).find((x) => x.subject === 'Coffee machine')!;
    const [note] = await waitFor(() => (sink.messages().length >= 1 ? sink.messages() : undefined), 'the notification at the sink', 15_000);
    assert.deepEqual(note.rcptTo, ['bob@example.org'], 'the watcher; not alice, who wrote the mail');
    const raw = note.raw.toString('utf8');
    assert.match(raw, new RegExp(`^Subject: \\[Test project - Bug #${w.id}\\] Coffee machine`, 'm'));
    assert.match(raw, /^From: tracker@tracker\.test/m);
    assert.match(raw, /It makes tea\./);
    assert.match(raw, new RegExp(`^In-Reply-To: ${first.replace(/[.$]/g, '\\$&')}`, 'm'));
    const ours = /^Message-ID: (<[^>]+@tracker\.test>)/im.exec(raw)?.[1];
    assert.ok(ours, raw);

    const reply = await send([
      ...['--from', 'bob@example.org', '--to', 'notify@tracker.test', '--header', 'Subject: Re: that thing', '--header', `In-Reply-To: ${ours}`],
      ...['--body', 'Priority: Normal\n\nTea is fine.\n\n> It makes tea.\n'],
    ]);
    assert.equal((await settled(reply)).status, 'delivered');
    const after = await wp(w.id);
    assert.equal(after.priority, 'Normal');
    assert.equal(after.journals[after.journals.length - 1].notes, 'Tea is fine.');
    const second = await waitFor(() => (sink.messages().length >= 2 ? sink.messages()[1] : undefined), 'the update notification', 15_000);
    assert.deepEqual(second.rcptTo, ['alice@example.org'], 'the author; not bob, who wrote the reply');
    assert.match(second.raw.toString('utf8'), /priority: High -> Normal/);
  });
});
