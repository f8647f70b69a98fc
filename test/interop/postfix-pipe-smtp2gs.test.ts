import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createRelayGroup, relayedCopies, writeDeliverIni } from '../helpers/deliver.js';
import { DEBIAN_PYTHON, freePort, skipWithout, tempDir, waitFor } from '../helpers/env.js';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { pySmtpSink } from '../helpers/py-smtp-sink.js';
import { swaks } from '../helpers/swaks.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * A real Postfix piping to `postroom deliver URL` the way GroupServer's smtp2gs is run: no
 * --sender and no Return-Path (pipe flags without R), so the sender is <> and a members-only
 * group admits a post on its From: address. And a bounce Postfix itself makes for a message
 * relayed with XVERP comes back at LIST+USER=HOST@ and counts against that member.
 */
const SUITE = 'Postfix pipe → postroom deliver, as smtp2gs runs';
describe(SUITE, { skip: skipWithout(SUITE, 'postfix', 'swaks', 'aiosmtpd', 'python3') }, () => {
  let postfix: PostfixInstance | undefined;
  let pr: TestPostroom;
  let sink: Awaited<ReturnType<typeof pySmtpSink>>;
  let groupId: number;
  const ini = tempDir('smtp2gs-ini-');

  before(async () => {
    // The members' server refuses dee (who joins only for the XVERP case): that copy bounces.
    sink = await pySmtpSink(['250'], { dee: '550' });
    const postfixPort = await freePort();
    pr = await startTestPostroom({
      smtp: { domains: ['pipe.test'] },
      delivery: { pollInterval: '100ms' },
      groups: { relay: { host: '127.0.0.1', port: postfixPort, starttls: 'never' }, bounceLimit: 5 },
      routes: [{ name: 'groups', match: { recipient: '*@pipe.test' }, deliver: [{ group: {} }], retry: { schedule: ['200ms'], maxAttempts: 20, jitter: 0 } }],
    });
    const iniFile = writeDeliverIni(ini.dir, pr.apiToken);
    const entry = [
      'postroom  unix  -       n       n       -       -       pipe',
      `  flags=q user=nobody null_sender= argv=${process.execPath} ${root}/bin/postroom.js deliver -c ${iniFile} --recipient \${original_recipient} ${pr.baseUrl}`,
    ].join('\n');
    postfix = await startPostfix({ port: postfixPort, pipeDomain: 'pipe.test', relayDomain: 'relay.test', relayPort: sink.port, pipeEntry: entry, extra: ['smtpd_authorized_verp_clients = 127.0.0.0/8'] });
    groupId = await createRelayGroup(pr.api, { name: 'Talk', address: 'talk@pipe.test' });
    const res = await pr.api(`/api/v1/groups/${groupId}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{"posting":"members"}' });
    assert.equal(res.status, 200, await res.text());
  });
  after(async () => {
    await postfix?.stop();
    await pr?.close();
    await sink?.close();
    ini.cleanup();
  });

  const member = async (email: string) => (await (await pr.api(`/api/v1/groups/${groupId}/members/${email}`)).json()) as { bounces: number };

  it("a member's post arrives with no envelope sender and is relayed (membership read from From:)", async () => {
    const r = await swaks(postfix!.port, ['--to', 'talk@pipe.test', '--from', 'ann@relay.test', '--helo', 'client.test', '--header', 'Subject: seed way']);
    assert.equal(r.code, 0, r.out);
    await waitFor(() => postfix!.log().split('\n').find((l) => l.includes('to=<talk@pipe.test>') && /relay=postroom.*status=sent/.test(l)), 'the pipe', 30_000);
    await relayedCopies(sink, 'seed way', { what: 'copies at the sink', ms: 30_000 });
    const posts = ((await (await pr.api(`/api/v1/groups/${groupId}/posts`)).json()) as { items: { status: string; message: string }[] }).items;
    const msg = (await (await pr.api(`/api/v1/messages/${posts[0].message}`)).json()) as { envelope: { mailFrom: string } };
    assert.equal(msg.envelope.mailFrom, '', 'kept with the null sender, as the pipe handed it');
    assert.notEqual(posts[0].status, 'held');
  });

  it("Postfix's own bounce of an XVERP copy (to talk+dee=relay.test@pipe.test) counts against dee", async () => {
    const join = await pr.api(`/api/v1/groups/${groupId}/members/dee@relay.test`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.ok(join.ok, await join.text());
    // A relay that sends one transaction for all members asks Postfix for XVERP.
    const script = [
      'import smtplib, sys',
      's = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))',
      's.ehlo("relay.test")',
      'msg = "From: talk@pipe.test\\r\\nTo: talk@pipe.test\\r\\nSubject: xverp copy\\r\\nMessage-ID: <xverp-copy@pipe.test>\\r\\n\\r\\nhello\\r\\n"',
      'print(s.sendmail("talk@pipe.test", ["dee@relay.test"], msg, mail_options=["XVERP"]))',
      's.quit()',
    ].join('\n');
    await run(DEBIAN_PYTHON, ['-c', script, String(postfix!.port)]);
    await waitFor(() => postfix!.log().split('\n').find((l) => l.includes('to=<talk+dee=relay.test@pipe.test>') && /relay=postroom.*status=sent/.test(l)), 'the bounce piped to postroom', 60_000).catch(
      (err: Error) => assert.fail(`${err.message}\n${postfix!.log().slice(-4000)}`),
    );
    await waitFor(async () => (await member('dee@relay.test')).bounces === 1, "dee's bounce counted", 30_000);
  });
});
