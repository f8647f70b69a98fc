import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runDeliver } from '../helpers/deliver.js';
import { tempDir, waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

const MSG = 'From: Jan <jan@example.org>\r\nTo: list@pipe.test\r\nSubject: piped\r\nMessage-ID: <p1@example.org>\r\n\r\nhello\r\n';
const withXot = (rcpt: string, body = MSG) => `X-Original-To: ${rcpt}\r\n${body}`;
/** MSG after 51 relays: a mail loop by smtp.maxReceived (50). */
const LOOPED = `${'Received: from a.example by b.example; Sat, 21 Nov 2026 06:00:00 +0000\r\n'.repeat(51)}${MSG}`;

/** An HTTP server that answers every request with what `answer` says (after reading the body). */
async function fakeServer(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const srv = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => answer(req, res));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    close: () => {
      srv.closeAllConnections();
      return new Promise((r) => srv.close(r));
    },
  };
}

// Each case is a process of its own: run a few at once.
describe('postroom deliver (the built binary)', { concurrency: 4 }, () => {
  let pr: TestPostroom;
  let ini: string;
  let badIni: string;
  const tmp = tempDir('deliver-cli-');
  const fakes: { url: string; close(): Promise<unknown> }[] = [];
  let busy: string, garbage: string, silent: string, protocol: string;

  before(async () => {
    pr = await startTestPostroom({
      parse: { pollInterval: '100ms' },
      smtp: { domains: ['pipe.test'] },
      http: { maxUploadSize: '64KiB' },
      routes: [{ name: 'list', match: { recipient: 'list@pipe.test' }, deliver: [{ discard: {} }] }],
    });
    ini = path.join(tmp.dir, 'postroom-deliver.ini');
    writeFileSync(ini, `; the server\n[config-default]\nwebservice = main\n\n[webservice-main]\ntoken = ${pr.apiToken}\n`);
    badIni = path.join(tmp.dir, 'bad.ini');
    writeFileSync(badIni, '[config-default]\nwebservice = main\n[webservice-main]\ntoken = not-the-token\n');
    const mk = async (f: Parameters<typeof fakeServer>[0]) => {
      const s = await fakeServer(f);
      fakes.push(s);
      return s.url;
    };
    busy = await mk((_q, res) => res.writeHead(503).end('try later'));
    garbage = await mk((_q, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>'));
    silent = await mk(() => {});
    protocol = await mk((_q, res) =>
      res
        .writeHead(400, { 'content-type': 'application/problem+json' })
        .end(JSON.stringify({ code: 'INVALID_REQUEST', enhancedStatus: '5.5.4', detail: 'query.x: unknown parameter' })),
    );
  });
  after(async () => {
    for (const f of fakes) await f.close();
    await pr?.close();
    tmp.cleanup();
  });

  /** Environment for a deliver writing to the test Postroom's own store. */
  const localEnv = () => ({
    POSTROOM_DATA_DIR: pr.dir,
    ...(pr.config.store.database ? { POSTROOM_DATABASE_URL: pr.config.store.database } : {}),
    POSTROOM_CONFIG: path.join(tmp.dir, 'local.yaml'),
  });
  before(() => {
    writeFileSync(
      path.join(tmp.dir, 'local.yaml'),
      'smtp:\n  domains: [pipe.test]\nroutes:\n  - name: list\n    match: { recipient: list@pipe.test }\n    deliver: [{ discard: {} }]\n',
    );
  });

  const cases: { name: string; args: () => string[]; input: () => string | Buffer; env?: () => Record<string, string>; code: number; status: RegExp }[] = [
    { name: 'empty input: 5.3.0, exit 66 (EX_NOINPUT)', args: () => ['--recipient', 'list@pipe.test'], input: () => '', env: localEnv, code: 66, status: /^5\.3\.0 / },
    { name: 'no -l, --recipient or X-Original-To: 5.1.3, exit 65', args: () => [], input: () => MSG, env: localEnv, code: 65, status: /^5\.1\.3 / },
    { name: 'larger than -m: 5.3.4, exit 65', args: () => ['-m', '1', '--recipient', 'list@pipe.test'], input: () => Buffer.alloc(3 << 20, 'a'), env: localEnv, code: 65, status: /^5\.3\.4 / },
    { name: 'unknown recipient (local store): 5.1.1, exit 67 (EX_NOUSER)', args: () => ['--recipient', 'nobody@pipe.test'], input: () => MSG, env: localEnv, code: 67, status: /^5\.1\.1 / },
    { name: 'recipient outside smtp.domains: 5.7.1, exit 77 (EX_NOPERM)', args: () => ['--recipient', 'list@elsewhere.test'], input: () => MSG, env: localEnv, code: 77, status: /^5\.7\.1 / },
    { name: 'a data directory that cannot be created (under /dev/null): 4.3.5 naming it, exit 75', args: () => ['--recipient', 'list@pipe.test'], input: () => MSG, env: () => ({ POSTROOM_DATA_DIR: '/dev/null/nowhere' }), code: 75, status: /^4\.3\.5 Cannot create directory \/dev\/null\/nowhere/ },
    { name: 'invalid --config: 4.3.5, exit 75', args: () => ['--config', '/nonexistent.yaml', '--recipient', 'list@pipe.test'], input: () => MSG, code: 75, status: /^4\.3\.5 / },
    { name: "--sender that is no address ('a b@@c'): 5.1.7, exit 64 (EX_USAGE)", args: () => ['--sender', 'a b@@c', '--recipient', 'list@pipe.test'], input: () => MSG, env: localEnv, code: 64, status: /^5\.1\.7 --sender 'a b@@c' is not an address/ },
    { name: '51 Received: headers (local store): 5.4.6 mail loop, exit 65', args: () => ['--recipient', 'list@pipe.test'], input: () => LOOPED, env: localEnv, code: 65, status: /^5\.4\.6 Routing loop detected: 51 Received: headers/ },
    { name: '51 Received: headers (server): 5.4.6 mail loop, exit 65', args: () => ['-c', ini, '--recipient', 'list@pipe.test', pr.baseUrl], input: () => LOOPED, code: 65, status: /^5\.4\.6 Routing loop detected: 51 Received: headers/ },
    { name: 'unknown option: 4.3.5, exit 75', args: () => ['--frobnicate'], input: () => MSG, code: 75, status: /^4\.3\.5 / },
    { name: 'URL without an INI file: 4.3.5, exit 75', args: () => ['-c', '/nonexistent.ini', '--recipient', 'list@pipe.test', pr.baseUrl], input: () => MSG, code: 75, status: /^4\.3\.5 / },
    { name: 'INI without the instance: 4.3.5, exit 75', args: () => ['-c', ini, '-i', 'other', '--recipient', 'list@pipe.test', pr.baseUrl], input: () => MSG, code: 75, status: /^4\.3\.5 .*config-other/ },
    { name: 'URL without a host: 4.5.2, exit 75', args: () => ['-c', ini, '--recipient', 'list@pipe.test', 'http://'], input: () => MSG, code: 75, status: /^4\.5\.2 / },
    { name: 'nothing listening: 4.4.4, exit 75', args: () => ['-c', ini, '--recipient', 'list@pipe.test', 'http://127.0.0.1:1'], input: () => MSG, code: 75, status: /^4\.4\.4 / },
    { name: 'wrong token (401): 4.5.0, exit 75', args: () => ['-c', badIni, '--recipient', 'list@pipe.test', pr.baseUrl], input: () => MSG, code: 75, status: /^4\.5\.0 .*token/ },
    { name: 'server busy (503): 4.4.5, exit 75', args: () => ['-c', ini, '--recipient', 'list@pipe.test', busy], input: () => MSG, code: 75, status: /^4\.4\.5 / },
    { name: 'undecodable answer: 4.5.0, exit 75', args: () => ['-c', ini, '--recipient', 'list@pipe.test', garbage], input: () => MSG, code: 75, status: /^4\.5\.0 / },
    { name: 'server says the request is malformed: 5.5.0, exit 76', args: () => ['-c', ini, '--recipient', 'list@pipe.test', protocol], input: () => MSG, code: 76, status: /^5\.5\.0 / },
    { name: 'server never answers: the deadline gives 4.4.7, exit 75', args: () => ['-c', ini, '--deadline', '1', '--recipient', 'list@pipe.test', silent], input: () => MSG, code: 75, status: /^4\.4\.7 / },
    { name: 'unknown recipient (server): 5.1.1, exit 67', args: () => ['-c', ini, '--recipient', 'nobody@pipe.test', pr.baseUrl], input: () => MSG, code: 67, status: /^5\.1\.1 / },
    { name: 'recipient the server refuses to relay: 5.7.1, exit 77', args: () => ['-c', ini, '--recipient', 'list@elsewhere.test', pr.baseUrl], input: () => MSG, code: 77, status: /^5\.7\.1 / },
    { name: "over the server's maxUploadSize: 5.3.4, exit 65", args: () => ['-c', ini, '--recipient', 'list@pipe.test', pr.baseUrl], input: () => MSG + 'x'.repeat(200_000), code: 65, status: /^5\.3\.4 / },
    { name: 'empty input (server): 5.3.0, exit 66', args: () => ['-c', ini, '--recipient', 'list@pipe.test', pr.baseUrl], input: () => '', code: 66, status: /^5\.3\.0 / },
  ];

  for (const c of cases) {
    it(`${c.name}; stdin read to its end; never exit 1`, async () => {
      const r = await runDeliver(c.args(), c.input(), { env: c.env?.(), cwd: tmp.dir });
      assert.equal(r.code, c.code, `exit ${r.code}: ${r.stderr}`);
      assert.match(r.stderr, c.status);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one stderr line: ${r.stderr}`);
      if (!/deadline/.test(c.name)) assert.ok(r.inputWhole, 'the whole input was read');
    });
  }

  it('keeps a message in the local store byte for byte (X-Original-To), and the running server parses and routes it', async () => {
    const raw = withXot('list@pipe.test', MSG.replace('p1@', 'p2@'));
    const r = await runDeliver(['--sender', 'jan@example.org'], raw, { env: localEnv(), cwd: tmp.dir });
    assert.equal(r.code, 0, r.stderr);
    const id = /kept as (\S+)/.exec(r.stdout)?.[1];
    assert.ok(id, r.stdout);
    const detail = await waitFor(async () => {
      const d = (await (await pr.api(`/api/v1/messages/${id}`)).json()) as { status: string; ingress: string; envelope: { mailFrom: string; rcptTo: string[] }; sha256: string };
      return d.status === 'delivered' ? d : undefined;
    }, 'the server to parse and route the piped message', 30_000);
    assert.equal(detail.ingress, 'pipe');
    assert.deepEqual(detail.envelope.rcptTo, ['list@pipe.test']);
    assert.equal(detail.envelope.mailFrom, 'jan@example.org');
    assert.equal(detail.sha256, createHash('sha256').update(raw).digest('hex'));
  });

  it('-l wins over --recipient, which wins over X-Original-To', async () => {
    const raw = withXot('nobody@pipe.test', MSG.replace('p1@', 'p3@'));
    const viaRcpt = await runDeliver(['--recipient', 'list@pipe.test'], raw, { env: localEnv(), cwd: tmp.dir });
    assert.equal(viaRcpt.code, 0, viaRcpt.stderr);
    const viaList = await runDeliver(['-l', 'list@pipe.test', '--recipient', 'nobody@pipe.test'], raw, { env: localEnv(), cwd: tmp.dir });
    assert.equal(viaList.code, 0, viaList.stderr);
  });

  it('POSTs to the server with the token from the INI file: exit 0, kept with ingress http', async () => {
    const raw = MSG.replace('p1@', 'p4@');
    const r = await runDeliver(['-c', ini, '--recipient', 'list@pipe.test', '--sender', 'jan@example.org', pr.baseUrl], raw, { cwd: tmp.dir });
    assert.equal(r.code, 0, r.stderr);
    const id = /kept as (\S+)/.exec(r.stdout)?.[1];
    const d = (await (await pr.api(`/api/v1/messages/${id}`)).json()) as { ingress: string; sha256: string; envelope: { mailFrom: string } };
    assert.equal(d.ingress, 'http');
    assert.equal(d.envelope.mailFrom, 'jan@example.org');
    assert.equal(d.sha256, createHash('sha256').update(raw).digest('hex'));
  });

  it('reads the message from -f FILE', async () => {
    const file = path.join(tmp.dir, 'msg.eml');
    writeFileSync(file, withXot('list@pipe.test', MSG.replace('p1@', 'p5@')));
    const r = await runDeliver(['-f', file], '', { env: localEnv(), cwd: tmp.dir });
    assert.equal(r.code, 0, r.stderr);
  });
});
