import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { requirePeer, waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { swaks } from '../helpers/swaks.js';

/**
 * The fax gateway's route, as written in config/examples/fax.yaml (only the spool dir is
 * moved into the test's temporary directory), driven end to end through the SMTP listener.
 * swaks reads an argument starting with '+' as an option, so the later cases use a bare
 * number, which the route's `\+?\d+` also takes.
 */
describe('the fax route of config/examples/fax.yaml, through SMTP', () => {
  let app: TestPostroom;
  let spool: string;

  before(async () => {
    const file = path.join(import.meta.dirname, '../../config/examples/fax.yaml');
    const routes = parseYaml(readFileSync(file, 'utf8')).routes;
    spool = path.join(process.env.TMPDIR ?? '/tmp', `postroom-fax-${process.pid}-${Date.now()}`);
    routes[0].deliver[0].spool.dir = spool;
    app = await startTestPostroom({ routes });
  });
  after(() => app.close());

  const files = () => {
    try {
      return readdirSync(spool).filter((f) => !f.startsWith('.')).sort();
    } catch {
      return [];
    }
  };

  const ini = (text: string, section: string) => {
    const body = text.split(/^\[/m).find((s) => s.startsWith(`${section}]`)) ?? '';
    return Object.fromEntries(
      body
        .split(/\r?\n/)
        .slice(1)
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')).trim(), l.slice(l.indexOf('=') + 1).trim()]),
    );
  };

  test('spools a .txt and a .ctl with user_app_id from the subject and [from] from Reply-To', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const run = await swaks(app.smtpPort, [
      '--from', 'orders@shop.example',
      '--to', '"Jan Novak/ACME/Sales/+420123456789"@fax',
      '--header', 'Subject: Order ID:4711',
      '--header', 'Reply-To: Desk <desk@shop.example>',
      '--body', 'Please fax this order.',
    ]);
    assert.equal(run.code, 0, run.out);
    const got = await waitFor(() => {
      const f = files();
      return f.some((n) => n.endsWith('.ctl')) && f.some((n) => n.endsWith('.txt')) ? f : undefined;
    }, 'the .txt and .ctl in the spool directory', 20_000);
    const ctl = readFileSync(path.join(spool, got.find((n) => n.endsWith('.ctl'))!), 'utf8');
    assert.equal(ini(ctl, 'system').user_app_id, '4711');
    assert.equal(ini(ctl, 'from').email, 'desk@shop.example');
    assert.deepEqual(
      { ...ini(ctl, 'to') },
      { name: 'Jan Novak', company: 'ACME', dept: 'Sales', number: '+420123456789' },
    );
    const txt = readFileSync(path.join(spool, got.find((n) => n.endsWith('.txt'))!), 'utf8');
    assert.match(txt, /Please fax this order\./);
  });

  test('falls back to From, then to the literal, for [from]', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const before = new Set(files());
    await swaks(app.smtpPort, ['--from', 'a@shop.example', '--to', '420111@fax', '--header', 'From: Clerk <clerk@shop.example>', '--header', 'Subject: no id']);
    const ctlName = await waitFor(() => files().find((n) => n.endsWith('.ctl') && !before.has(n)), 'a second .ctl', 20_000);
    const ctl = readFileSync(path.join(spool, ctlName), 'utf8');
    assert.equal(ini(ctl, 'from').email, 'clerk@shop.example');
    assert.equal(ini(ctl, 'system').user_app_id, '');
  });

  test('refuses a sender matching .*@gsm$ with 550 5.7.1 at RCPT and keeps nothing', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const count = async () => (await app.db.kysely.selectFrom('messages').select('id').execute()).length;
    const n = await count();
    const run = await swaks(app.smtpPort, ['--from', 'modem@gsm', '--to', '420123@fax', '--quit-after', 'RCPT']);
    assert.ok(run.replies.some((r) => r.startsWith('550 5.7.1')), run.out);
    assert.equal(await count(), n);
  });
});
