import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startPostroom } from '../../src/app.js';
import { listWorkPackages } from '../../src/domain/tracker/read.js';
import { tq } from '../../src/domain/tracker/tables.js';
import { createLogger } from '../../src/telemetry/log.js';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { requirePeer, skipWithout, waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { cleanEnv } from '../helpers/serve-child.js';
import { seedTracker, trackerMail } from '../helpers/tracker.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The Redmine/OpenProject cron line as their documentation writes it, word for word but for
 * the server: `postroom fetch imap host=… port=… username=… password=… project=test_project
 * allow_override=type,project`. No route is configured: the work-package options alone make
 * the fetched mail work packages; and, as the original, IMAP deletes what it kept.
 */
describe('postroom fetch, rake style, from Dovecot → work packages without a route', { skip: skipWithout('postroom fetch rake style from Dovecot', 'dovecot') }, () => {
  let dc: Dovecot;
  let pr: TestPostroom;
  let config: string;

  before(async () => {
    dc = await startDovecot();
    pr = await startTestPostroom({});
    await seedTracker(pr.db);
    config = path.join(pr.dir, 'fetch.yaml');
    const store = pr.config.store.database ? `store:\n  database: ${JSON.stringify(pr.config.store.database)}\n` : '';
    writeFileSync(config, `dataDir: ${JSON.stringify(pr.config.dataDir)}\nlog:\n  level: warn\n${store}`);
  });
  after(async () => {
    await pr?.close();
    await dc?.stop();
  });

  const fetch = (args: string[]) =>
    run(process.execPath, [path.join(root, 'bin/postroom.js'), 'fetch', ...args, '--config', config], { env: cleanEnv() }).then(
      (r) => ({ code: 0, stderr: r.stderr }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
  /** A second node on the store parses, plans and delivers what the fetch kept (the one under test has no parse poll for fetched mail). */
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
  const settled = (messageId: string) =>
    waitFor(async () => {
      const m = await pr.db.kysely.selectFrom('messages').select(['id', 'status', 'error']).where('message_id', '=', messageId).executeTakeFirst();
      return m && ['delivered', 'failed'].includes(m.status) ? m : undefined;
      // A wait, not a timing claim: a fresh node on PostgreSQL under a loaded machine takes a while.
    }, `${messageId} delivered or failed`, 60_000);

  it('imap key=value: work packages from the options alone (allow_override=type,project,assigned_to); kept mail deleted from the server', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    await dc.append('INBOX', [
      trackerMail({ messageId: '<rake-1@mail.test>', subject: 'Rake one', body: 'Type: Feature\nProject: other_project\n\nFrom the cron job.' }),
      trackerMail({ messageId: '<rake-2@mail.test>', from: 'Bob <bob@example.org>', subject: 'Rake two', body: 'Assignee: alice\nPriority: Low\n\nSecond.' }),
    ]);
    const r = await fetch([
      'imap',
      `host=${dc.host}`,
      `port=${dc.imapPort}`,
      'ssl=false',
      `username=${dc.user}`,
      `password=${dc.pass}`,
      'allow_override=type,project,assigned_to',
      'project=test_project',
      'priority=High',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /kept 2, already kept 0, refused 0/);
    assert.deepEqual(await dc.messageIds('INBOX'), [], 'kept mail deleted, as the original does without move_on_success');

    const [one, two] = await nextServe(() => Promise.all(['<rake-1@mail.test>', '<rake-2@mail.test>'].map(settled)));
    assert.deepEqual([one.status, one.error, two.status, two.error], ['delivered', null, 'delivered', null]);
    const deliveries = await pr.db.kysely.selectFrom('deliveries').select(['route', 'kind']).where('message', 'in', [one.id, two.id]).execute();
    assert.deepEqual([...new Set(deliveries.map((d) => `${d.route}/${d.kind}`))], ['postroom-fetch/workpackage']);
    const wps = await listWorkPackages(tq(pr.db.kysely), { limit: 10 });
    const a = wps.find((w) => w.subject === 'Rake one')!;
    assert.deepEqual([a.project.identifier, a.type, a.priority, a.author?.login], ['other_project', 'Feature', 'High', 'alice']);
    const b = wps.find((w) => w.subject === 'Rake two')!;
    assert.deepEqual([b.project.identifier, b.priority, b.assignee?.login, b.author?.login], ['test_project', 'High', 'alice', 'bob'], 'priority fixed by the options, assignee from the mail');
  });

  it('imap move_on_success=FOLDER moves instead of deleting; --flags and key=value mix', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    await dc.append('INBOX', [trackerMail({ messageId: '<rake-3@mail.test>', subject: 'Rake three', body: 'Moved.' })]);
    const r = await fetch(['imap', '--host', dc.host, `port=${dc.imapPort}`, `username=${dc.user}`, '--password', dc.pass, 'project=test_project', 'move_on_success=Done']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await dc.messageIds('INBOX'), []);
    assert.deepEqual(await dc.messageIds('Done'), ['<rake-3@mail.test>']);
    assert.equal((await nextServe(() => settled('<rake-3@mail.test>'))).status, 'delivered');
  });

  it('pop3 key=value with no_permission_check=1: an unknown sender files as Anonymous; unknown_user=create is refused as unsupported (64)', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    await dc.append('INBOX', [trackerMail({ messageId: '<rake-4@mail.test>', from: 'stranger@outside.test', subject: 'Rake four', body: 'Anyone.' })]);
    const refused = await fetch(['pop3', `host=${dc.host}`, `port=${dc.pop3Port}`, `username=${dc.user}`, `password=${dc.pass}`, 'project=test_project', 'unknown_user=create']);
    assert.equal(refused.code, 64, refused.stderr);
    assert.match(refused.stderr, /unknown_user=create/);
    const r = await fetch(['pop3', `host=${dc.host}`, `port=${dc.pop3Port}`, `username=${dc.user}`, `password=${dc.pass}`, 'project=test_project', 'tracker=Support', 'no_permission_check=1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /kept 1,/);
    assert.deepEqual(await dc.messageIds('INBOX'), []);
    assert.equal((await nextServe(() => settled('<rake-4@mail.test>'))).status, 'delivered');
    const w = (await listWorkPackages(tq(pr.db.kysely), { limit: 10 })).find((x) => x.subject === 'Rake four')!;
    assert.deepEqual([w.author, w.type], [null, 'Support']);
  });
});
