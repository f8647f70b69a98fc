import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import nodemailer from 'nodemailer';
import { waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

/** SMTP in, webhook out: the receiver gets exactly the body the route's payload template makes. */
describe('webhook payload templates, end to end', () => {
  let pr: TestPostroom;
  let hook: http.Server;
  const hits: { url: string; contentType: string | undefined; body: Buffer }[] = [];

  before(async () => {
    hook = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        hits.push({ url: req.url ?? '', contentType: req.headers['content-type'], body: Buffer.concat(chunks) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(hook.address() as AddressInfo).port}`;
    pr = await startTestPostroom({
      delivery: { pollInterval: '50ms' },
      routes: [
        {
          name: 'chat',
          match: { recipient: '(?P<team>[a-z]+)-chat@postroom.test' },
          deliver: [{ webhook: { url: `${base}/slack`, allowPrivate: true, payload: { json: { text: '[<%team%>] <%subject%>', from: '<%messageFromAddress%>', body: '<%msg%>' } } } }],
        },
        {
          name: 'form',
          match: { recipient: 'form@postroom.test' },
          deliver: [{ webhook: { url: `${base}/form`, allowPrivate: true, payload: 'form' } }],
        },
      ],
    });
  });
  after(async () => {
    await pr?.close();
    hook.closeAllConnections();
    await new Promise((r) => hook.close(r));
  });

  async function send(to: string, subject: string, text: string) {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: pr.smtpPort, secure: false, ignoreTLS: true });
    try {
      await t.sendMail({ from: 'alice@example.org', to, subject, text, messageId: '<m1@example.org>' });
    } finally {
      t.close();
    }
  }

  const subject = 'Quote " backslash \\ </script> ünïcödé 📨';
  const text = 'line one\n"two"\t\\three\n';

  test('a JSON template: application/json, exactly the templated document', async () => {
    await send('ops-chat@postroom.test', subject, text);
    const hit = await waitFor(() => hits.find((h) => h.url === '/slack'), 'the chat webhook');
    assert.equal(hit.contentType, 'application/json');
    assert.equal(
      hit.body.toString('utf8'),
      JSON.stringify({ text: `[ops] ${subject}`, from: 'alice@example.org', body: text }),
    );
  });

  test('the form preset: application/x-www-form-urlencoded, exactly the preset fields', async () => {
    await send('form@postroom.test', subject, text);
    const hit = await waitFor(() => hits.find((h) => h.url === '/form'), 'the form webhook');
    assert.equal(hit.contentType, 'application/x-www-form-urlencoded');
    const id = (await pr.db.kysely.selectFrom('messages').select('id').where('rcpt_to', 'like', '%form@%').executeTakeFirstOrThrow()).id;
    const expected = new URLSearchParams([
      ['from', 'alice@example.org'],
      ['fromName', ''],
      ['to', 'form@postroom.test'],
      ['subject', subject],
      ['text', text],
      ['messageId', '<m1@example.org>'],
      ['id', id],
    ]).toString();
    assert.equal(hit.body.toString('utf8'), expected);
  });
});
