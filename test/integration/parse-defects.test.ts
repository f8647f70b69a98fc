import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import nodemailer from 'nodemailer';
import { testBackend, waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

const DEFECTS = path.resolve(import.meta.dirname, '../fixtures/mime-defects');

/** Malformed mail says so: in the store, the API, the metrics, and to routes. */
describe(`parse defects are recorded, shown and routable (${testBackend()})`, () => {
  let pr: TestPostroom;
  let hook: http.Server;
  const hits: { path: string; body: string }[] = [];

  before(async () => {
    hook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        hits.push({ path: req.url ?? '', body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(hook.address() as AddressInfo).port}`;
    pr = await startTestPostroom({
      delivery: { pollInterval: '50ms' },
      routes: [
        { name: 'quarantine', match: { recipient: 'in@postroom.test', defects: true }, deliver: [{ webhook: { url: `${base}/quarantine`, allowPrivate: true } }] },
        { name: 'clean', match: { recipient: 'in@postroom.test', defects: false }, deliver: [{ webhook: { url: `${base}/clean`, allowPrivate: true } }] },
      ],
    });
  });
  after(async () => {
    await pr?.close();
    hook.closeAllConnections();
    await new Promise((r) => hook.close(r));
  });

  async function send(raw: Buffer): Promise<void> {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: pr.smtpPort, secure: false, ignoreTLS: true });
    try {
      await t.sendMail({ envelope: { from: 'alice@example.org', to: ['in@postroom.test'] }, raw });
    } finally {
      t.close();
    }
  }
  const list = async (q: string) =>
    ((await (await pr.api(`/api/v1/messages${q}`)).json()) as { items: { id: string; status: string; defects: string[] }[] }).items;

  test('a message without its header/body separator: defect listed, counted, routed to quarantine', async () => {
    await send(readFileSync(path.join(DEFECTS, '3-missing-header-separator.eml')));
    const m = await waitFor(async () => (await list('?subject=no%20blank%20line')).find((x) => x.status === 'delivered'), 'the malformed message to be delivered', 60_000);
    assert.deepEqual(m.defects, ['missing-header-body-separator']);
    const detail = (await (await pr.api(`/api/v1/messages/${m.id}`)).json()) as { defects: string[]; parts: { kind: string }[] };
    assert.deepEqual(detail.defects, ['missing-header-body-separator']);
    assert.deepEqual(detail.parts.map((p) => p.kind), ['text']);
    const text = await (await pr.api(`/api/v1/messages/${m.id}/text`)).text();
    assert.match(text, /This line has no colon and starts the body\./);
    assert.deepEqual(hits.map((h) => h.path), ['/quarantine']);
    const metrics = await (await pr.api('/metrics')).text();
    assert.match(metrics, /postroom_parse_defects_total\{defect="missing-header-body-separator"\} 1\b/);
  });

  test('a bounce: its delivery-status part is a part of its own, and its fields are in the detail', async () => {
    const dsn = [
      'From: MAILER-DAEMON@mx.example.org',
      'Subject: bounce with fields',
      'Date: Tue, 1 Jul 2003 10:52:37 +0200',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="R"',
      '',
      '--R',
      'Content-Type: text/plain',
      '',
      'Your message could not be delivered.',
      '--R',
      'Content-Type: message/delivery-status',
      '',
      'Reporting-MTA: dns; mx.example.org',
      '',
      'Final-Recipient: rfc822; gone@example.com',
      'Action: failed',
      'Status: 5.1.1',
      'Diagnostic-Code: smtp; 550 5.1.1 <gone@example.com>: no such user',
      '--R--',
      '',
    ].join('\r\n');
    await send(Buffer.from(dsn));
    const m = await waitFor(async () => (await list('?subject=bounce%20with%20fields')).find((x) => x.status === 'delivered'), 'the bounce to be delivered', 60_000);
    const detail = (await (await pr.api(`/api/v1/messages/${m.id}`)).json()) as {
      parts: { idx: number; kind: string; contentType: string }[];
      reports: { part: number; contentType: string; perMessage: Record<string, string>; recipients: Record<string, string>[] }[];
    };
    const ds = detail.parts.find((p) => p.contentType === 'message/delivery-status');
    assert.ok(ds, JSON.stringify(detail.parts));
    assert.deepEqual(detail.reports, [
      {
        part: ds.idx,
        contentType: 'message/delivery-status',
        perMessage: { 'Reporting-MTA': 'dns; mx.example.org' },
        recipients: [{ 'Final-Recipient': 'rfc822; gone@example.com', Action: 'failed', Status: '5.1.1', 'Diagnostic-Code': 'smtp; 550 5.1.1 <gone@example.com>: no such user' }],
      },
    ]);
    const text = await (await pr.api(`/api/v1/messages/${m.id}/text`)).text();
    assert.doesNotMatch(text, /Final-Recipient/, 'the fields are not prose in the text');
  });

  test('an abuse report: its text part as sent in its charset, its feedback-report as fields (RFC 5965)', async () => {
    const arf = [
      'From: abuse@example.net',
      'Subject: arf with fields',
      'Date: Tue, 1 Jul 2003 10:52:37 +0200',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=feedback-report; boundary=R',
      '',
      '--R',
      'Content-Type: text/plain; charset=iso-8859-1',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'Beschwerde =FCber eine Nachricht',
      '--R',
      'Content-Type: message/feedback-report',
      '',
      'Feedback-Type: abuse',
      'User-Agent: SomeGenerator/1.0',
      'Version: 1',
      'Original-Mail-From: <somespammer@example.net>',
      '--R',
      'Content-Type: text/rfc822-headers',
      '',
      'From: <somespammer@example.net>',
      '--R--',
      '',
    ].join('\r\n');
    await send(Buffer.from(arf));
    const m = await waitFor(async () => (await list('?subject=arf%20with%20fields')).find((x) => x.status === 'delivered'), 'the report to be delivered', 60_000);
    const detail = (await (await pr.api(`/api/v1/messages/${m.id}`)).json()) as {
      parts: { idx: number; kind: string; contentType: string; url: string }[];
      reports: { part: number; contentType: string; perMessage: Record<string, string> }[];
    };
    const fr = detail.parts.find((p) => p.contentType === 'message/feedback-report');
    assert.ok(fr, JSON.stringify(detail.parts));
    assert.deepEqual(detail.reports, [
      {
        part: fr.idx,
        contentType: 'message/feedback-report',
        perMessage: { 'Feedback-Type': 'abuse', 'User-Agent': 'SomeGenerator/1.0', Version: '1', 'Original-Mail-From': '<somespammer@example.net>' },
        recipients: [],
      },
    ]);
    const body = detail.parts.find((p) => p.kind === 'body');
    assert.ok(body, JSON.stringify(detail.parts));
    assert.equal(body.contentType, 'text/plain; charset="iso-8859-1"');
    const res = await pr.api(body.url);
    assert.equal(res.headers.get('content-type'), 'text/plain; charset="iso-8859-1"');
    assert.equal(Buffer.from(await res.arrayBuffer()).toString('latin1'), 'Beschwerde \xfcber eine Nachricht');
    assert.match(await (await pr.api(`/api/v1/messages/${m.id}/text`)).text(), /Beschwerde über eine Nachricht/);
  });

  test('a clean message has no defects and takes the clean route', async () => {
    await send(Buffer.from('From: a@example.org\r\nSubject: clean one\r\nDate: Tue, 1 Jul 2003 10:52:37 +0200\r\n\r\nhello\r\n'));
    const m = await waitFor(async () => (await list('?subject=clean%20one')).find((x) => x.status === 'delivered'), 'the clean message to be delivered', 60_000);
    assert.deepEqual(m.defects, []);
    assert.equal(hits.at(-1)?.path, '/clean');
  });
});
