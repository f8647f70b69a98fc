import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { getWorkPackage, listJournals, listWorkPackages } from '../../src/domain/tracker/read.js';
import { tq } from '../../src/domain/tracker/tables.js';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { requirePeer, skipWithout, waitFor } from '../helpers/env.js';
import { startPostroom } from '../../src/app.js';
import { createLogger } from '../../src/telemetry/log.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { cleanEnv } from '../helpers/serve-child.js';
import { seedTracker, trackerMail } from '../helpers/tracker.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The Redmine/OpenProject way of taking mail: a cron job fetches a mailbox with the route
 * options `project=test_project allow_override=type,project`. Here `postroom fetch imap
 * --route tracker` keeps what a real Dovecot holds into the store of a running Postroom, which
 * parses it and hands it to that route's workpackage target.
 */
describe('postroom fetch imap from Dovecot → workpackage route', { skip: skipWithout('postroom fetch imap from Dovecot → workpackage route', 'dovecot') }, () => {
  let dc: Dovecot;
  let pr: TestPostroom;
  let config: string;

  before(async () => {
    dc = await startDovecot();
    pr = await startTestPostroom({
      routes: [{ name: 'tracker', match: { recipient: 'tracker@mail.test' }, deliver: [{ workpackage: { project: 'test_project', allow_override: "type,project" } }] }],
    });
    await seedTracker(pr.db);
    config = path.join(pr.dir, 'fetch.yaml');
    // The same store as the running Postroom: the fetch keeps, the server parses, routes, delivers.
    const store = pr.config.store.database ? `store:\n  database: ${JSON.stringify(pr.config.store.database)}\n` : '';
    // The route as an operator writes it: the original's `project=test_project allow_override=type,project`.
    const routes = 'routes:\n  - name: tracker\n    match: { recipient: tracker@mail.test }\n    deliver:\n      - workpackage: { project: test_project, allow_override: "type,project" }\n';
    writeFileSync(config, `dataDir: ${JSON.stringify(pr.config.dataDir)}\nlog:\n  level: warn\n${store}${routes}`);
  });
  after(async () => {
    await pr?.close();
    await dc?.stop();
  });

  const fetchOnce = () =>
    run(
      process.execPath,
      [path.join(root, 'bin/postroom.js'), 'fetch', 'imap', '--config', config, '--host', dc.host, '--port', String(dc.imapPort), '--username', dc.user, '--password', dc.pass, '--route', 'tracker', '--move-on-success', 'Done'],
      { env: cleanEnv() },
    ).then(
      (r) => ({ code: 0, stderr: r.stderr }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
  /**
   * What `postroom fetch` kept is parsed, routed and delivered by the next `postroom serve` on
   * the store (a running one polls only for `postroom deliver`'s pipe mail): start one, a second
   * node without listeners, until `until` holds.
   */
  async function nextServe<T>(until: () => Promise<T>): Promise<T> {
    const node = await startPostroom(
      { ...pr.config, smtp: { ...pr.config.smtp, enabled: false }, http: { ...pr.config.http, enabled: false }, mail: { ...pr.config.mail, fetch: false } },
      { log: createLogger('silent') },
    );
    try {
      return await until();
    } finally {
      await node.stop();
    }
  }
  const q = () => tq(pr.db.kysely);
  const settled = (messageId: string) =>
    waitFor(async () => {
      const m = await pr.db.kysely.selectFrom('messages').select(['id', 'status', 'error']).where('message_id', '=', messageId).executeTakeFirst();
      return m && ['delivered', 'failed'].includes(m.status) ? m : undefined;
      // A wait, not a timing claim: under a loaded CI machine a fresh node on PostgreSQL takes a while.
    }, `${messageId} delivered or failed`, 60_000);

  it('new mail: type and project from the mail (allowed), other attributes too; an unknown sender fails with its reason', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    await dc.append('INBOX', [
      trackerMail({ messageId: '<imap-1@mail.test>', subject: 'Docs are wrong', body: 'Project: other_project\nType: Feature\nCategory: Docs\n\nPage 3 is wrong.' }),
      trackerMail({ messageId: '<imap-2@mail.test>', from: 'Bob <bob@example.org>', subject: 'Slow login', body: 'type: Support\npriority: High\nDue date: 2026-04-30\n\nIt takes a minute.' }),
      trackerMail({ messageId: '<imap-3@mail.test>', from: 'mallory@evil.test', subject: 'Win', body: 'Click.' }),
    ]);
    const r = await fetchOnce();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /kept 3, already kept 0, refused 0/);
    assert.deepEqual(await dc.messageIds('INBOX'), [], 'kept mail moved away');

    const [one, two, refused] = await nextServe(() => Promise.all(['<imap-1@mail.test>', '<imap-2@mail.test>', '<imap-3@mail.test>'].map(settled)));
    assert.deepEqual([one.status, two.status], ['delivered', 'delivered']);
    assert.equal(refused.status, 'failed');
    assert.match(refused.error ?? '', /5\.7\.1 Unknown sender <mallory@evil\.test>/);

    const wps = await listWorkPackages(q(), { limit: 10 });
    const docs = wps.find((w) => w.subject === 'Docs are wrong')!;
    assert.deepEqual([docs.project.identifier, docs.type, docs.category, docs.author?.login, docs.description], ['other_project', 'Feature', 'Docs', 'alice', 'Page 3 is wrong.']);
    const slow = wps.find((w) => w.subject === 'Slow login')!;
    assert.deepEqual([slow.project.identifier, slow.type, slow.priority, slow.dueDate, slow.author?.login], ['test_project', 'Support', 'High', '2026-04-30', 'bob']);
    assert.equal(wps.length, 2);
  });

  it('a reply fetched later updates the work package it answers: note without the quote, Type changed', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const slow = (await listWorkPackages(q(), { limit: 10 })).find((w) => w.subject === 'Slow login')!;
    await dc.append('INBOX', [
      trackerMail({
        messageId: '<imap-4@mail.test>',
        from: 'Bob <bob@example.org>',
        subject: `Re: [#${slow.id}] Slow login`,
        body: 'Type: Bug\n\nIt is a bug after all.\n\nOn Mon, 2 Mar 2026 at 10:00, Bob <bob@example.org> wrote:\n> type: Support\n> It takes a minute.\n',
      }),
    ]);
    const r = await fetchOnce();
    assert.equal(r.code, 0, r.stderr);
    const reply = await nextServe(() => settled('<imap-4@mail.test>'));
    assert.deepEqual([reply.status, reply.error], ['delivered', null]);
    const now = (await getWorkPackage(q(), slow.id))!;
    assert.equal(now.type, 'Bug');
    const journals = await listJournals(q(), slow.id);
    assert.equal(journals.length, 2, JSON.stringify(journals));
    assert.equal(journals[1].notes, 'It is a bug after all.');
    assert.deepEqual(journals[1].changes, [{ field: 'type', old: 'Support', new: 'Bug' }]);
    assert.equal(journals[1].user?.login, 'bob');
  });
});
