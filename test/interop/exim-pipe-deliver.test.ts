import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startPostroom } from '../../src/app.js';
import { createRelayGroup, relayedCopies, writeDeliverIni } from '../helpers/deliver.js';
import { freePort, skipWithout, tempDir, waitFor } from '../helpers/env.js';
import { startExim, type EximInstance } from '../helpers/exim.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { pySmtpSink } from '../helpers/py-smtp-sink.js';
import { swaks } from '../helpers/swaks.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The Exim router and transport exactly as the README shows them, with this checkout's paths,
 * this test's INI file, server and domain, and -m 1 (so a 2 MiB message is too large).
 */
function readmeStanza(iniFile: string, url: string): { routers: string; transports: string } {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const block = /Exim, a router and a transport[\s\S]*?```\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!block?.includes('driver = pipe')) throw new Error('the README shows no Exim router and transport');
  const text = block
    .replace('lists.example.org', 'pipe.test')
    .replace('/usr/bin/node', process.execPath)
    .replace('/opt/postroom/', `${root}/`)
    .replace('/etc/postroom/deliver.ini', iniFile)
    .replace('-m 200', '-m 1')
    .replace('http://127.0.0.1:8025', url);
  for (const s of [iniFile, url, '-m 1', 'domains = pipe.test']) assert.ok(text.includes(s), `${s} not in ${text}`);
  const [routers, transports] = text.split('# transports');
  assert.ok(routers.includes('driver = accept') && transports?.includes('driver = pipe'), text);
  return { routers, transports };
}

/**
 * A real Exim 4 (Debian's binary) in front of `postroom deliver` (pipe transport, user nobody,
 * the README's router and transport), POSTing to a Postroom server's HTTP intake. Posts to a
 * group come back through the same Exim (groups.relay) to the members, and Exim's bounces to
 * the senders, all captured by an aiosmtpd sink. The cases of postfix-pipe-deliver.test.ts.
 */
const EXIM_SUITE = 'Exim pipe transport → postroom deliver → groups';
describe(EXIM_SUITE, { skip: skipWithout(EXIM_SUITE, 'exim', 'swaks', 'aiosmtpd') }, () => {
  let exim: EximInstance | undefined;
  let pr: TestPostroom;
  let sink: Awaited<ReturnType<typeof pySmtpSink>>;
  let groupId: number;
  const ini = tempDir('deliver-ini-');

  before(async () => {
    sink = await pySmtpSink(['250']);
    const eximPort = await freePort();
    pr = await startTestPostroom({
      smtp: { domains: ['pipe.test'] },
      delivery: { pollInterval: '100ms' },
      groups: { relay: { host: '127.0.0.1', port: eximPort, starttls: 'never' }, bounceLimit: 5 },
      routes: [{ name: 'groups', match: { recipient: '*@pipe.test' }, deliver: [{ group: {} }], retry: { schedule: ['200ms'], maxAttempts: 20, jitter: 0 } }],
    });
    // The pipe runs as nobody: it must read the INI file (and nothing else of ours).
    const iniFile = writeDeliverIni(ini.dir, pr.apiToken);
    exim = await startExim({ port: eximPort, domains: ['pipe.test', 'relay.test'], relayDomain: 'relay.test', relayPort: sink.port, ...readmeStanza(iniFile, pr.baseUrl) });
    groupId = await createRelayGroup(pr.api, { name: 'Talk', address: 'talk@pipe.test' });
  });
  after(async () => {
    await exim?.stop();
    await pr?.close();
    await sink?.close();
    ini.cleanup();
  });

  const send = (to: string, from: string, extra: string[] = []) => swaks(exim!.port, ['--to', to, '--from', from, '--helo', 'client.test', ...extra]);
  /** Exim's id for the message swaks sent (its reply to the dot: 250 OK id=…). */
  const queuedId = (out: string) => {
    const id = /250 OK id=(\S+)/.exec(out)?.[1];
    assert.ok(id, out);
    return id;
  };
  /** The main log line about message `id` that matches `re` (on timeout: that message's lines). */
  const logLine = (id: string, re: RegExp, what: string) =>
    waitFor(() => exim!.log().split('\n').find((l) => l.includes(id) && re.test(l)), what, 30_000).catch((e: Error) => {
      throw new Error(`${e.message}; Exim's log for ${id}:\n${exim!.log().split('\n').filter((l) => l.includes(id)).join('\n')}`);
    });
  /** Exim's bounce (null sender, aiosmtpd's '<>') to the original sender for a failed recipient. */
  const bounceFor = (rcpt: string) =>
    waitFor(() => sink.messages().find((m) => m.mailFrom === '<>' && new RegExp(`^X-Failed-Recipients: ${rcpt}\r?$`, 'm').test(m.raw.toString('latin1'))), `Exim's bounce for ${rcpt}`, 30_000).catch((e: Error) => {
      throw new Error(`${e.message}; Exim's log:\n${exim!.log()}`);
    });

  it('a post sent with swaks is piped, stored, posted, and relayed to the 3 members through Exim with VERP return paths', async (t) => {
    // The sender's own X-Original-To must not choose the group (the transport removes it).
    const r = await send('talk@pipe.test', 'ann@relay.test', ['--header', 'Subject: hello via exim', '--add-header', 'X-Original-To: nosuch@pipe.test']);
    assert.equal(r.code, 0, r.out);
    await logLine(queuedId(r.out), /=> talk <talk@pipe\.test> R=postroom_lists T=postroom_pipe/, 'the pipe to deliver the post');
    await relayedCopies(sink, 'hello via exim', { list: { address: 'talk@pipe.test', name: 'Talk' }, what: 'three copies at the sink', ms: 30_000 });
    const posts = ((await (await pr.api(`/api/v1/groups/${groupId}/posts`)).json()) as { items: { status: string; message: string }[] }).items;
    assert.equal(posts.length, 1);
    assert.equal(posts[0].status, 'relayed');
    const msg = (await (await pr.api(`/api/v1/messages/${posts[0].message}`)).json()) as { ingress: string; envelope: { mailFrom: string; rcptTo: string[] } };
    assert.equal(msg.ingress, 'http');
    assert.equal(msg.envelope.mailFrom, 'ann@relay.test');
    assert.deepEqual(msg.envelope.rcptTo, ['talk@pipe.test']);
    // What was kept is the message as Exim passed it on, under Postroom's own Received line:
    // Exim's Return-path and Received, no mbox "From " line (a pipe's default message_prefix),
    // and only the X-Original-To the transport wrote.
    const raw = await (await pr.api(`/api/v1/messages/${posts[0].message}/raw`)).text();
    const kept = raw.replace(/^Received: [^\n]*\n(?:\t[^\n]*\n)*/, '');
    assert.match(raw, /^Received: [^\n]*\r?\n\tby mx\.postroom\.test \(Postroom [0-9a-f]{12}\) with HTTP/);
    assert.match(kept, /^Return-path: <ann@relay\.test>\r?\nReceived: from \[127\.0\.0\.1\] \(helo=client\.test\)\r?\n\tby mx\.test\.local/);
    assert.match(raw, /^Subject: hello via exim\r?$/m);
    assert.deepEqual(raw.match(/^X-Original-To: [^\r\n]*/gim), ['X-Original-To: talk@pipe.test']);
  });

  it('an oversize message (over -m 1) bounces with 5.3.4, in the main log and in the bounce', async (t) => {
    const file = path.join(ini.dir, 'big.eml');
    writeFileSync(file, `From: ann@relay.test\r\nTo: talk@pipe.test\r\nSubject: too big\r\n\r\n${`${'x'.repeat(998)}\r\n`.repeat(2100)}.\r\n`);
    const r = await send('talk@pipe.test', 'ann@relay.test', ['--data', `@${file}`]);
    assert.equal(r.code, 0, r.out);
    const id = queuedId(r.out);
    await logLine(id, /\*\* talk@pipe\.test R=postroom_lists T=postroom_pipe: Child process of postroom_pipe transport returned 65/, 'a failure (exit 65)');
    await logLine(id, /<talk@pipe\.test>: postroom_pipe transport output: 5\.3\.4 Message size exceeds the maximum of 1048576 bytes/, 'the 5.3.4 line in the main log');
    const bounce = await bounceFor('talk@pipe.test');
    assert.deepEqual(bounce.rcptTo, ['ann@relay.test']);
    assert.match(bounce.raw.toString('latin1'), /5\.3\.4 Message size exceeds the maximum of 1048576 bytes/);
  });

  it('an unknown group bounces with 5.1.1, in the main log and in the bounce', async (t) => {
    const r = await send('nosuch@pipe.test', 'ann@relay.test', ['--header', 'Subject: anyone there']);
    assert.equal(r.code, 0, r.out);
    const id = queuedId(r.out);
    await logLine(id, /\*\* nosuch@pipe\.test R=postroom_lists T=postroom_pipe: Child process of postroom_pipe transport returned 67/, 'a failure (exit 67)');
    await logLine(id, /<nosuch@pipe\.test>: postroom_pipe transport output: 5\.1\.1 No such group here/, 'the 5.1.1 line in the main log');
    const bounce = await bounceFor('nosuch@pipe.test');
    assert.match(bounce.raw.toString('latin1'), /5\.1\.1 No such group here/);
  });

  it('a bounce sent to a VERP address counts against that member', async (t) => {
    const r = await send('talk+bounces-bob=relay.test@pipe.test', '<>', ['--header', 'Subject: Undelivered Mail Returned to Sender']);
    assert.equal(r.code, 0, r.out);
    await logLine(queuedId(r.out), /=> \S+ <talk\+bounces-bob=relay\.test@pipe\.test> R=postroom_lists T=postroom_pipe/, 'the pipe to deliver the bounce');
    await waitFor(async () => {
      const m = (await (await pr.api(`/api/v1/groups/${groupId}/members/bob@relay.test`)).json()) as { bounces: number };
      return m.bounces === 1;
    }, "bob's bounce count", 30_000);
  });

  it('with the server down the message is deferred (exit 75, 4.4.4), and delivered after it starts and a queue run', async (t) => {
    const config = pr.config;
    await pr.stop();
    const r = await send('talk@pipe.test', 'cy@relay.test', ['--header', 'Subject: while you were out']);
    assert.equal(r.code, 0, r.out);
    const id = queuedId(r.out);
    await logLine(id, /== talk@pipe\.test R=postroom_lists T=postroom_pipe defer \(-?\d+\): Child process of postroom_pipe transport returned 75/, 'a deferral');
    await logLine(id, /<talk@pipe\.test>: postroom_pipe transport output: 4\.4\.4 Cannot connect/, 'the 4.4.4 line in the main log');
    assert.match(exim!.queue(), new RegExp(id));
    const restarted = await startPostroom(config, { log: pr.log });
    pr.stop = () => restarted.stop();
    await exim!.flush();
    await logLine(id, /=> talk <talk@pipe\.test> R=postroom_lists T=postroom_pipe/, 'the delivery in the queue run');
    const got = await relayedCopies(sink, 'while you were out', { what: 'three copies after the restart', ms: 60_000 });
    assert.equal(got.length, 3);
    assert.doesNotMatch(exim!.queue(), new RegExp(id));
  });
});
