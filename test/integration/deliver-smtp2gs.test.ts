import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { classifyRecipient } from '../../src/domain/groups/addresses.js';
import { defaultIniFile, readDeliverIni } from '../../src/ingress/deliver-ini.js';
import { intakeUrl } from '../../src/ingress/pipe-http.js';
import { runDeliver } from '../helpers/deliver.js';
import { tempDir, waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

/**
 * `postroom deliver` run as GroupServer's smtp2gs is: `deliver URL` with the seed's INI file
 * (only `[webservice-default] token = …`), found at $INSTANCE_HOME/etc/gsconfig.ini, no
 * --sender and no Return-Path (a member's post is let in on its From: address), and bounces
 * addressed in Postfix's XVERP form.
 */

const post = (o: { id: string; from: string; to?: string; extra?: string }) =>
  `From: ${o.from}\r\nTo: ${o.to ?? 'talk@lists.test'}\r\nSubject: seed-style ${o.id}\r\nMessage-ID: <${o.id}@members.test>\r\n${o.extra ?? ''}\r\nhello\r\n`;

describe('postroom deliver the smtp2gs way', { concurrency: 3 }, () => {
  let pr: TestPostroom;
  const tmp = tempDir('deliver-smtp2gs-');
  let instanceHome: string;
  let cwd: string;
  let groupId: number;

  before(async () => {
    pr = await startTestPostroom({
      smtp: { domains: ['lists.test'] },
      delivery: { pollInterval: '100ms' },
      // No groups.relay: a post is stored and approved, its relay waits (4.3.5): enough to see it let in.
      routes: [{ name: 'groups', match: { recipient: '*@lists.test' }, deliver: [{ group: {} }], retry: { schedule: ['1h'], maxAttempts: 2, jitter: 0 } }],
    });
    const res = await pr.api('/api/v1/groups', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Talk', address: 'talk@lists.test', posting: 'members', members: [{ email: 'ann@members.test' }, { email: 'bob@members.test' }] }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    groupId = ((await res.json()) as { id: number }).id;
    // GroupServer's layout: $INSTANCE_HOME/etc/gsconfig.ini with its first example's content.
    instanceHome = path.join(tmp.dir, 'instance');
    mkdirSync(path.join(instanceHome, 'etc'), { recursive: true });
    writeFileSync(path.join(instanceHome, 'etc', 'gsconfig.ini'), `[webservice-default]\ntoken = ${pr.apiToken}\n`);
    // A working directory without Postroom's own postroom-deliver.ini.
    cwd = path.join(tmp.dir, 'spool');
    mkdirSync(cwd);
    writeFileSync(
      path.join(tmp.dir, 'local.yaml'),
      'smtp:\n  domains: [lists.test]\nroutes:\n  - name: groups\n    match: { recipient: "*@lists.test" }\n    deliver: [{ group: {} }]\n',
    );
  });
  after(async () => {
    await pr?.close();
    tmp.cleanup();
  });

  const seedEnv = () => ({ INSTANCE_HOME: instanceHome });
  const localEnv = () => ({
    POSTROOM_DATA_DIR: pr.dir,
    ...(pr.config.store.database ? { POSTROOM_DATABASE_URL: pr.config.store.database } : {}),
    POSTROOM_CONFIG: path.join(tmp.dir, 'local.yaml'),
  });
  const posts = async () =>
    ((await (await pr.api(`/api/v1/groups/${groupId}/posts`)).json()) as { items: { messageId: string; status: string }[] }).items;

  it("reads an INI with only [webservice-default] token = … (the seed's first example)", () => {
    const file = path.join(tmp.dir, 'only-ws.ini');
    writeFileSync(file, '[webservice-default]\ntoken = s3cret-token-value\n');
    assert.deepEqual(readDeliverIni(file, 'default'), { webservice: 'default', token: 's3cret-token-value' });
    // -i other, with no [config-other] and no [webservice-other]: still 4.3.5, naming both.
    assert.throws(() => readDeliverIni(file, 'other'), (e: Error & { status?: string }) => e.status === '4.3.5' && /webservice-other.*config-other/.test(e.message));
  });

  it('without -c: ./postroom-deliver.ini when it exists, else $INSTANCE_HOME/etc/gsconfig.ini, else ./postroom-deliver.ini', () => {
    const own = path.resolve('postroom-deliver.ini');
    assert.equal(defaultIniFile({ INSTANCE_HOME: '/srv/gs' }, () => false), '/srv/gs/etc/gsconfig.ini');
    assert.equal(defaultIniFile({ INSTANCE_HOME: '/srv/gs' }, (f) => f === own), own);
    assert.equal(defaultIniFile({}, () => false), own);
  });

  it('`http:///foo` (an empty host) is 4.5.2, never a host named foo to connect to', () => {
    for (const u of ['http:///foo', 'https:///', 'http://', 'http://?x', 'ftp://host/']) {
      assert.throws(() => intakeUrl(u), (e: Error & { status?: string }) => e.status === '4.5.2', u);
    }
    assert.equal(intakeUrl('http://mx:8025').href, 'http://mx:8025/api/v1/inbound');
  });

  it("reads Postfix XVERP bounce addresses (LIST+USER=HOST@DOMAIN) as a member's bounce, not a post", () => {
    assert.deepEqual(classifyRecipient('talk+bob=members.test@lists.test'), { kind: 'bounce', list: 'talk@lists.test', member: 'bob@members.test' });
    assert.deepEqual(classifyRecipient('talk+bounces+a=b=example.org@lists.test'), { kind: 'bounce', list: 'talk@lists.test', member: 'a=b@example.org' });
    // Our own VERP form is unchanged; a sender's tag without a domain-like part stays a post.
    assert.deepEqual(classifyRecipient('talk+bounces-bob=members.test@lists.test'), { kind: 'bounce', list: 'talk@lists.test', member: 'bob@members.test' });
    assert.deepEqual(classifyRecipient('talk+x=y@lists.test'), { kind: 'post', list: 'talk@lists.test' });
    assert.deepEqual(classifyRecipient('talk+news@lists.test'), { kind: 'post', list: 'talk@lists.test' });
  });

  it('`deliver URL` with the gsconfig.ini of $INSTANCE_HOME, no --sender, no Return-Path: a member posts (checked on From:)', async () => {
    const r = await runDeliver(['--recipient', 'talk@lists.test', pr.baseUrl], post({ id: 'seed-member', from: 'Ann <ann@members.test>' }), { env: seedEnv(), cwd });
    assert.equal(r.code, 0, r.stderr);
    const p = await waitFor(async () => (await posts()).find((x) => x.messageId === '<seed-member@members.test>'), 'the post', 30_000);
    assert.equal(p.status, 'approved');
  });

  it('`deliver URL` without a sender from a non-member: refused on the From: address before the upload (5.7.1, exit 77)', async () => {
    const r = await runDeliver(['--recipient', 'talk@lists.test', pr.baseUrl], post({ id: 'seed-stranger', from: 'eve@else.test' }), { env: seedEnv(), cwd });
    assert.equal(r.code, 77, r.stderr);
    assert.match(r.stderr, /^5\.7\.1 .*<eve@else\.test> is not one/);
  });

  it('HTTP intake with the null sender and no from hint: kept, and the delivery refuses a non-member From: (5.7.1, no post)', async () => {
    const res = await pr.api('/api/v1/inbound?recipient=talk%40lists.test', { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: post({ id: 'http-stranger', from: 'eve@else.test' }) });
    assert.equal(res.status, 202, await res.clone().text());
    const id = ((await res.json()) as { id: string }).id;
    const d = await waitFor(async () => {
      const items = ((await (await pr.api(`/api/v1/deliveries?message=${id}`)).json()) as { items: { status: string; lastError: string | null }[] }).items;
      return items.find((x) => x.status === 'failed');
    }, 'the failed delivery', 30_000);
    assert.match(d.lastError ?? '', /5\.7\.1 .*eve@else\.test/);
    assert.equal((await posts()).find((x) => x.messageId === '<http-stranger@members.test>'), undefined);
  });

  it('local store, no sender: a member on From: posts (exit 0); a non-member is refused before keeping (5.7.1, exit 77)', async () => {
    const ok = await runDeliver(['-l', 'talk@lists.test'], post({ id: 'local-member', from: 'bob@members.test' }), { env: localEnv(), cwd });
    assert.equal(ok.code, 0, ok.stderr);
    await waitFor(async () => (await posts()).find((x) => x.messageId === '<local-member@members.test>'), 'the post', 30_000);
    const no = await runDeliver(['-l', 'talk@lists.test'], post({ id: 'local-stranger', from: 'eve@else.test' }), { env: localEnv(), cwd });
    assert.equal(no.code, 77, no.stderr);
    assert.match(no.stderr, /^5\.7\.1 .*<eve@else\.test> is not one/);
    // An envelope sender, when there is one, still decides (From: is not consulted).
    const env = await runDeliver(['-l', 'talk@lists.test', '--sender', 'eve@else.test'], post({ id: 'local-env', from: 'bob@members.test' }), { env: localEnv(), cwd });
    assert.equal(env.code, 77, env.stderr);
  });

  it('empty stdin without -l or --recipient: 5.3.0 (exit 66), not 5.1.3', async () => {
    for (const [args, env] of [[[], localEnv()], [[pr.baseUrl], seedEnv()]] as const) {
      const r = await runDeliver([...args], '', { env, cwd });
      assert.equal(r.code, 66, r.stderr);
      assert.match(r.stderr, /^5\.3\.0 /);
    }
  });

  it('`deliver URL http:///foo`: 4.5.2, exit 75', async () => {
    const r = await runDeliver(['--recipient', 'talk@lists.test', 'http:///foo'], post({ id: 'badurl', from: 'ann@members.test' }), { env: seedEnv(), cwd });
    assert.equal(r.code, 75, r.stderr);
    assert.match(r.stderr, /^4\.5\.2 /);
  });

  it('a bounce to the XVERP address counts against that member', async () => {
    const dsn = 'From: MAILER-DAEMON@members.test\r\nTo: talk+bob=members.test@lists.test\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <xverp-1@members.test>\r\n\r\nbounced\r\n';
    const r = await runDeliver(['--recipient', 'talk+bob=members.test@lists.test', pr.baseUrl], dsn, { env: seedEnv(), cwd });
    assert.equal(r.code, 0, r.stderr);
    await waitFor(async () => ((await (await pr.api(`/api/v1/groups/${groupId}/members/bob@members.test`)).json()) as { bounces: number }).bounces === 1, "bob's bounce", 30_000);
    assert.equal((await posts()).find((x) => x.messageId === '<xverp-1@members.test>'), undefined);
  });
});
