import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requirePeer, tempDir, waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { swaks } from '../helpers/swaks.js';

/**
 * A config as an operator of the fax/SMS gateway writes it, driven through the SMTP listener
 * with swaks: Python-syntax recipient regexes, comma-separated client lists on a route (and a
 * global list that does not name this client), a disabled route, a txt template, @ commands,
 * and null-sender mail accepted and left alone.
 */
describe("the fax/SMS gateway's configuration, through SMTP", () => {
  let app: TestPostroom;
  let spool: ReturnType<typeof tempDir>;

  before(async () => {
    spool = tempDir('postroom-faxgw-');
    app = await startTestPostroom({
      // Not this client: it may connect because the fax route lists it.
      smtp: { clients: ['192.0.2.1, 192.0.2.2'] },
      routes: [
        {
          name: 'old-fax',
          enabled: false,
          match: { recipient: '*@fax' },
          deliver: [{ discard: {} }],
        },
        {
          name: 'fax',
          match: {
            recipient: '(?:(?P<name>[^/]+)/)?(?P<number>[+i]?\\d+)@fax$',
            clients: ['localhost, 127.0.0.1'],
            anonymous: 'ignore',
          },
          deliver: [
            {
              spool: {
                dir: spool.dir,
                format: 'txt',
                txt: 'From: <%address%>\n<%msg%>',
                commands: { names: ['number'] },
                control: { ctl_type: 'fax', to: { number: '<%number%>', name: '<%name%>' } },
              },
            },
          ],
        },
        { name: 'sms', match: { recipient: '*@sms' }, deliver: [{ discard: {} }] },
      ],
    });
  });
  after(async () => {
    await app.close();
    spool.cleanup();
  });

  const files = () => readdirSync(spool.dir).filter((f) => !f.startsWith('.'));

  test('a client on a route\'s comma-separated list connects and is spooled with the regex\'s captures and its @ commands', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const run = await swaks(app.smtpPort, [
      '--from', 'orders@shop.example',
      '--to', 'Jan/420111@fax',
      '--body', 'Please fax.\n@number: 420999\nThanks',
    ]);
    assert.equal(run.code, 0, run.out);
    const ctlName = await waitFor(() => files().find((f) => f.endsWith('.ctl')), 'the .ctl', 20_000);
    const ctl = readFileSync(path.join(spool.dir, ctlName), 'utf8');
    assert.match(ctl, /^\[to\]\nnumber=420999\nname=Jan$/m, ctl);
    assert.match(ctl, /^\[files\]$/m, 'the route did not disable the fax layout');
    const txt = readFileSync(path.join(spool.dir, files().find((f) => f.endsWith('.txt'))!), 'utf8');
    assert.equal(txt.replace(/\n+$/, ''), 'From: orders@shop.example\nPlease fax.\nThanks');
  });

  test('that client may use only routes that list it: 550 5.7.1 for another route', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const run = await swaks(app.smtpPort, ['--from', 'a@shop.example', '--to', '420111@sms', '--quit-after', 'RCPT']);
    assert.ok(run.replies.some((r) => r.startsWith('550 5.7.1')), run.out);
  });

  test('a disabled route takes nothing: *@fax that the fax regex does not match is unknown', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const run = await swaks(app.smtpPort, ['--from', 'a@shop.example', '--to', 'nobody@fax', '--quit-after', 'RCPT']);
    assert.ok(run.replies.some((r) => r.startsWith('550 5.1.1')), run.out);
  });

  test('anonymous: ignore accepts a bounce (250) and writes nothing, so no bounce answers it', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const before = files().length;
    const run = await swaks(app.smtpPort, ['--from', '<>', '--to', '420222@fax', '--header', 'Subject: Undeliverable']);
    assert.equal(run.code, 0, run.out);
    const id = /kept as (\w+)/.exec(run.out)?.[1];
    assert.ok(id, run.out);
    await waitFor(
      async () => (await app.db.kysely.selectFrom('messages').select('error').where('id', '=', id).executeTakeFirst())?.error ?? undefined,
      'the message planned',
      20_000,
    );
    const deliveries = await app.db.kysely.selectFrom('deliveries').select('id').where('message', '=', id).execute();
    assert.equal(deliveries.length, 0);
    assert.equal(files().length, before);
  });
});
