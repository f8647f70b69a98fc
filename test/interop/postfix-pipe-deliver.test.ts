import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startPostroom } from '../../src/app.js';
import { createRelayGroup, relayedCopies, writeDeliverIni } from '../helpers/deliver.js';
import { freePort, skipWithout, tempDir, waitFor } from '../helpers/env.js';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { pySmtpSink } from '../helpers/py-smtp-sink.js';
import { swaks } from '../helpers/swaks.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The master.cf lines exactly as the README shows them, with this checkout's paths, this
 * test's INI file and server, and -m 1 (so a 2 MiB message is too large).
 */
function readmeEntry(iniFile: string, url: string): string {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const block = /Postfix, `master\.cf`[^\n]*\n\n```\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!block?.includes('pipe')) throw new Error('the README shows no master.cf lines');
  const entry = block
    .replace('/usr/bin/node', process.execPath)
    .replace('/opt/postroom/', `${root}/`)
    .replace('/etc/postroom/deliver.ini', iniFile)
    .replace('-m 200', '-m 1')
    .replace('http://127.0.0.1:8025', url);
  assert.ok(entry.includes(iniFile) && entry.includes(url) && entry.includes('-m 1'), entry);
  return entry;
}

/**
 * A real Postfix in front of `postroom deliver` (pipe transport, user nobody, the master.cf
 * lines of the README), POSTing to a Postroom server's HTTP intake. Posts to a group come back
 * through the same Postfix (groups.relay) to the members, captured by an aiosmtpd sink.
 */
const SUITE = 'Postfix pipe transport → postroom deliver → groups';
describe(SUITE, { skip: skipWithout(SUITE, 'postfix', 'swaks', 'aiosmtpd') }, () => {
  let postfix: PostfixInstance | undefined;
  let pr: TestPostroom;
  let sink: Awaited<ReturnType<typeof pySmtpSink>>;
  let groupId: number;
  const ini = tempDir('deliver-ini-');

  before(async () => {
    sink = await pySmtpSink(['250']);
    const postfixPort = await freePort();
    pr = await startTestPostroom({
      smtp: { domains: ['pipe.test'] },
      delivery: { pollInterval: '100ms' },
      groups: { relay: { host: '127.0.0.1', port: postfixPort, starttls: 'never' }, bounceLimit: 5 },
      routes: [{ name: 'groups', match: { recipient: '*@pipe.test' }, deliver: [{ group: {} }], retry: { schedule: ['200ms'], maxAttempts: 20, jitter: 0 } }],
    });
    // The pipe runs as nobody: it must read the INI file (and nothing else of ours).
    const iniFile = writeDeliverIni(ini.dir, pr.apiToken);
    postfix = await startPostfix({ port: postfixPort, pipeDomain: 'pipe.test', relayDomain: 'relay.test', relayPort: sink.port, pipeEntry: readmeEntry(iniFile, pr.baseUrl) });
    groupId = await createRelayGroup(pr.api, { name: 'Talk', address: 'talk@pipe.test' });
  });
  after(async () => {
    await postfix?.stop();
    await pr?.close();
    await sink?.close();
    ini.cleanup();
  });

  const send = (to: string, from: string, extra: string[] = []) => swaks(postfix!.port, ['--to', to, '--from', from, '--helo', 'client.test', ...extra]);
  /** The maillog line for a recipient with the status we expect. */
  const logLine = (rcpt: string, status: RegExp, what: string) =>
    waitFor(() => postfix!.log().split('\n').find((l) => l.includes(`to=<${rcpt}>`) && status.test(l)), what, 30_000);

  it('a post sent with swaks is stored, posted, and relayed to the 3 members through Postfix with VERP return paths', async () => {
    const r = await send('talk@pipe.test', 'ann@relay.test', ['--header', 'Subject: hello via postfix']);
    assert.equal(r.code, 0, r.out);
    await logLine('talk@pipe.test', /relay=postroom.*status=sent/, 'the pipe to deliver the post');
    await relayedCopies(sink, 'hello via postfix', { list: { address: 'talk@pipe.test', name: 'Talk' }, what: 'three copies at the sink', ms: 30_000 });
    // The post is marked relayed when the relay's answers are recorded, just after the sink has the copies.
    const posts = await waitFor(async () => {
      const items = ((await (await pr.api(`/api/v1/groups/${groupId}/posts`)).json()) as { items: { status: string; message: string }[] }).items;
      return items.length === 1 && items[0].status !== 'approved' ? items : undefined;
    }, 'the post past approved', 30_000);
    assert.equal(posts.length, 1);
    assert.equal(posts[0].status, 'relayed');
    const msg = (await (await pr.api(`/api/v1/messages/${posts[0].message}`)).json()) as { ingress: string; envelope: { mailFrom: string } };
    assert.equal(msg.ingress, 'http');
    assert.equal(msg.envelope.mailFrom, 'ann@relay.test');
  });

  it('an oversize message (over -m 1) bounces with 5.3.4 in the maillog', async () => {
    const file = path.join(ini.dir, 'big.eml');
    writeFileSync(file, `From: ann@relay.test\r\nTo: talk@pipe.test\r\nSubject: too big\r\n\r\n${`${'x'.repeat(998)}\r\n`.repeat(2100)}.\r\n`);
    const r = await send('talk@pipe.test', 'ann@relay.test', ['--data', `@${file}`]);
    assert.equal(r.code, 0, r.out);
    const line = await logLine('talk@pipe.test', /dsn=5\.3\.4, status=bounced/, 'a 5.3.4 bounce');
    assert.match(line, /Message size exceeds the maximum of 1048576 bytes/);
  });

  it('an unknown group bounces with 5.1.1', async () => {
    await send('nosuch@pipe.test', 'ann@relay.test', ['--header', 'Subject: anyone there']);
    const line = await logLine('nosuch@pipe.test', /dsn=5\.1\.1, status=bounced/, 'a 5.1.1 bounce');
    assert.match(line, /No such group here/);
  });

  it('a bounce sent to a VERP address counts against that member', async () => {
    const r = await send('talk+bounces-bob=relay.test@pipe.test', '<>', ['--header', 'Subject: Undelivered Mail Returned to Sender']);
    assert.equal(r.code, 0, r.out);
    await waitFor(async () => {
      const m = (await (await pr.api(`/api/v1/groups/${groupId}/members/bob@relay.test`)).json()) as { bounces: number };
      return m.bounces === 1;
    }, "bob's bounce count", 30_000);
  });

  it('with the server down the message is deferred (4.4.4), and delivered after it starts and the queue is flushed', async () => {
    const config = pr.config;
    await pr.stop();
    await send('talk@pipe.test', 'cy@relay.test', ['--header', 'Subject: while you were out']);
    // pipe(8) moves the leading RFC 3463 code of our stderr line into dsn=.
    const line = await logLine('talk@pipe.test', /status=deferred/, 'a deferral');
    assert.match(line, /dsn=4\.4\.4, status=deferred \(Cannot connect/);
    const restarted = await startPostroom(config, { log: pr.log });
    pr.stop = () => restarted.stop();
    postfix!.flush();
    const got = await relayedCopies(sink, 'while you were out', { what: 'three copies after the restart', ms: 60_000 });
    assert.equal(got.length, 3);
  });
});
