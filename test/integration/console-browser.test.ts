import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM, skipWithout, tempDir, waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { swaks } from '../helpers/swaks.js';

/**
 * Run in the page (a string: tsx would add helpers the page does not have): controls without an
 * accessible name, and visible text whose contrast with the page is under WCAG AA's 4.5:1.
 */
const A11Y_CHECK = `(() => {
  const out = [];
  const name = (el) => {
    const aria = el.getAttribute('aria-label') || el.getAttribute('title');
    if (aria) return aria;
    const by = el.getAttribute('aria-labelledby');
    if (by) return document.getElementById(by)?.textContent ?? '';
    if (el.labels && el.labels.length) return el.labels[0].textContent ?? '';
    return (el.textContent ?? '').trim();
  };
  for (const el of document.querySelectorAll('button, a[href], input:not([type=hidden]), select, textarea, [role=tab]')) {
    if (!el.offsetParent) continue;
    if (!name(el).trim()) out.push('no name: ' + el.outerHTML.slice(0, 120));
  }
  const lum = (c) => {
    const [r, g, b] = (c.match(/[\\d.]+/g) ?? ['0', '0', '0']).slice(0, 3).map((v) => {
      const s = Number(v) / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const bg = getComputedStyle(document.body).backgroundColor;
  for (const el of document.querySelectorAll('main p, main td, main a, main dt, main dd, main h1, main .muted, main .hint, header a, main .error, main .status')) {
    if (!el.offsetParent || !(el.textContent ?? '').trim()) continue;
    const fg = getComputedStyle(el).color;
    const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    if (ratio < 4.5) out.push('contrast ' + ratio.toFixed(2) + ' < 4.5: ' + fg + ' on ' + bg + ': ' + el.outerHTML.slice(0, 80));
  }
  return out;
})()`;

/**
 * The console in a real browser (Debian's chromium through playwright-core) against a whole
 * Postroom on free ports: live list, message page and its tabs, a download compared byte for
 * byte, a replayed dead webhook delivery, the route tester, a held group post approved, sign
 * out; hostile mail rendered without running anything. Screenshots of every page, light and
 * dark, are written under the test's temp directory when a step fails.
 */
describe('web console in chromium', { skip: skipWithout('web console in chromium', 'chromium', 'swaks') }, () => {
  let pr: TestPostroom;
  let hook: http.Server;
  let hookHealthy = false;
  const hookHits: string[] = [];
  /** Requests that hostile mail tried to make (it must make none). */
  const exfil: string[] = [];
  let exfilServer: http.Server;
  let exfilUrl = '';
  let context: BrowserContext;
  let page: Page;
  const tmp = tempDir();
  const shots = path.join(tmp.dir, 'screenshots');
  const consoleLines: string[] = [];
  const dialogs: string[] = [];
  const confirms: string[] = [];
  let confirming = false;
  let groupId = 0;
  /** Whether this server has user accounts (POST /api/v1/users): then the console signs in as users. */
  let users = false;
  const PASSWORD = 'correct horse battery staple';

  before(async () => {
    hook = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        hookHits.push(req.url ?? '');
        res.writeHead(hookHealthy ? 204 : 503).end(hookHealthy ? '' : 'target down for the test');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    exfilServer = http.createServer((req, res) => {
      exfil.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'image/gif' }).end();
    });
    await new Promise<void>((r) => exfilServer.listen(0, '127.0.0.1', r));
    exfilUrl = `http://127.0.0.1:${(exfilServer.address() as AddressInfo).port}`;
    const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/in`;
    pr = await startTestPostroom({
      delivery: { pollInterval: '50ms' },
      groups: { relay: { host: '127.0.0.1', port: 9, starttls: 'never' } },
      routes: [
        {
          name: 'hooks',
          match: { recipient: 'hook@postroom.test' },
          deliver: [{ webhook: { url: hookUrl, allowPrivate: true } }],
          retry: { schedule: ['50ms'], maxAttempts: 1, jitter: 0 },
        },
        { name: 'orders', match: { recipient: 'orders-{n}@postroom.test' }, deliver: [{ discard: { reason: 'test' } }] },
        { name: 'groups', match: { recipient: '*@lists.test' }, deliver: [{ group: {} }] },
        { name: 'support', match: { recipient: 'support@tracker.test' }, deliver: [{ workpackage: { project: 'test_project' } }] },
        { name: 'inbox', match: { recipient: '*@postroom.test' }, deliver: [{ discard: {} }], catchAll: true },
      ],
    });
    const res = await pr.api('/api/v1/groups', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Talk', address: 'talk@lists.test', posting: 'moderated', members: [{ email: 'ann@members.test' }] }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    groupId = ((await res.json()) as { id: number }).id;
    for (const [name, role] of [['ada', 'admin'], ['vera', 'viewer']]) {
      const u = await pr.api('/api/v1/users', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, role, password: PASSWORD }) });
      users = u.status === 201;
      if (!users) break;
    }

    context = await chromium.launchPersistentContext(path.join(tmp.dir, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1280, height: 900 },
      acceptDownloads: true,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
    page.on('dialog', (d) => {
      // The console's own confirmation (retry all matching) is answered; any other dialog is a payload that ran.
      if (d.type() === 'confirm' && confirming) {
        confirms.push(d.message());
        return void d.accept();
      }
      dialogs.push(d.message());
      void d.dismiss();
    });
  });

  after(async () => {
    await context?.close();
    await pr?.close();
    for (const s of [hook, exfilServer]) {
      s?.closeAllConnections();
      await new Promise((r) => s?.close(r));
    }
    if (!process.exitCode) tmp.cleanup();
  });

  /** Every page, light and dark, as PNGs: what an engineer looks at when a step failed. */
  async function screenshots(why: string): Promise<void> {
    mkdirSync(shots, { recursive: true });
    const p = await context.newPage();
    for (const theme of ['light', 'dark'] as const) {
      await p.emulateMedia({ colorScheme: theme });
      for (const name of ['messages', 'deliveries', 'routes', 'objects', 'system', 'send', 'access']) {
        await p.goto(`${pr.baseUrl}/#/${name}`).catch(() => {});
        await p.waitForTimeout(300);
        await p.screenshot({ path: path.join(shots, `${name}-${theme}.png`), fullPage: true }).catch(() => {});
      }
    }
    await p.close();
    writeFileSync(path.join(shots, 'why.txt'), `${why}\n\nbrowser console:\n${consoleLines.join('\n')}\n`);
    process.exitCode = 1;
    console.error(`console test failed; screenshots in ${shots}`);
  }

  /** A step that leaves screenshots behind when it fails. */
  function step(name: string, fn: (t: import('node:test').TestContext) => Promise<void>) {
    it(name, async (t) => {
      try {
        await fn(t);
      } catch (err) {
        await page.screenshot({ path: path.join(tmp.dir, `${name.replace(/\W+/g, '-')}.png`), fullPage: true }).catch(() => {});
        await screenshots(`${name}: ${(err as Error).stack}`);
        throw err;
      }
    });
  }

  async function inbound(rcpt: string, sender: string, raw: string): Promise<string> {
    const q = new URLSearchParams({ recipient: rcpt, sender });
    const res = await pr.api(`/api/v1/inbound?${q}`, { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: raw.replace(/\r?\n/g, '\r\n') });
    assert.equal(res.status, 202, await res.clone().text());
    return ((await res.json()) as { id: string }).id;
  }

  async function signInAs(name: string): Promise<void> {
    await page.getByLabel('Name').fill(name);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { name: 'Messages' }).waitFor();
  }

  step('signs in (as a user where the server has users, else with the API token)', async () => {
    await page.goto(pr.baseUrl + '/');
    if (users) {
      await page.getByLabel('Name').fill('ada');
      await page.getByLabel('Password').fill('wrong password');
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.getByRole('alert').waitFor();
      await signInAs('ada');
      await page.getByText('ada (admin)').waitFor();
      await page.getByText('No mail yet: send one with').waitFor();
      return;
    }
    await page.getByText('Sign in with the API token instead').click();
    await page.getByLabel('API token').fill('wrong-token');
    await page.getByRole('button', { name: 'Sign in with token' }).click();
    await page.getByRole('alert').filter({ hasText: 'not the API token' }).waitFor();
    await page.getByText('Sign in with the API token instead').click();
    await page.getByLabel('API token').fill(pr.apiToken);
    await page.getByRole('button', { name: 'Sign in with token' }).click();
    await page.getByRole('heading', { name: 'Messages' }).waitFor();
    await page.getByText('No mail yet: send one with').waitFor();
  });

  const attachment = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) % 256));
  let liveId = '';

  step('a message sent with swaks appears in the list live, without a reload', async () => {
    await page.getByText('Live', { exact: true }).waitFor();
    await page.evaluate(() => ((window as unknown as { __stay: number }).__stay = 42));
    const file = path.join(tmp.dir, 'data.bin');
    writeFileSync(file, attachment);
    const run = await swaks(pr.smtpPort, ['--to', 'someone@postroom.test', '--from', 'alice@example.org', '--header', 'Subject: Live from swaks', '--attach-type', 'application/octet-stream', '--attach-name', 'data.bin', '--attach', `@${file}`]);
    assert.equal(run.code, 0, run.out);
    await page.getByRole('link', { name: 'Live from swaks' }).waitFor({ timeout: 15_000 });
    assert.equal(await page.evaluate(() => (window as unknown as { __stay?: number }).__stay), 42, 'the page was not reloaded');
    liveId = (await page.locator('tr[data-row]').first().getAttribute('data-id')) ?? '';
    assert.ok(liveId);
  });

  step('keyboard: / focuses search, j and Enter open, ? lists the keys', async () => {
    await page.keyboard.press('/');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'q');
    await page.keyboard.press('Escape');
    await page.keyboard.press('?');
    await page.getByRole('dialog', { name: 'Keyboard shortcuts' }).waitFor();
    await page.getByRole('button', { name: 'Close' }).click();
    await page.keyboard.press('j');
    await page.keyboard.press('Enter');
    await page.waitForURL(`**/#/messages/${liveId}`);
  });

  step('bulk select on the list (x selects the current row) replays the deliveries of the selected messages', async () => {
    await page.goto(`${pr.baseUrl}/#/messages`);
    await page.locator('tr[data-row]').first().waitFor();
    // The message was just received: wait until its one delivery (route inbox) has run.
    const before = await waitFor(async () => {
      const items = ((await (await pr.api(`/api/v1/deliveries?message=${liveId}`)).json()) as { items: { id: string; status: string }[] }).items;
      return items.length === 1 && items[0]!.status === 'done' ? items : undefined;
    }, 'the delivery of the live message');
    await page.keyboard.press('j');
    await page.keyboard.press('x');
    await page.getByText('1 selected').waitFor();
    await page.getByRole('button', { name: 'Replay deliveries of selected' }).click();
    await page.getByText('1 deliveries replayed', { exact: true }).waitFor();
    await waitFor(async () => {
      const d = (await (await pr.api(`/api/v1/deliveries/${before[0]!.id}`)).json()) as { history: unknown[]; status: string };
      return d.history.length === 2 && d.status === 'done';
    }, 'the replayed delivery to run again');
  });

  step('the message page: timeline, tabs, and an attachment downloaded byte for byte', async () => {
    await page.goto(`${pr.baseUrl}/#/messages/${liveId}`);
    await page.getByRole('heading', { name: 'Live from swaks' }).waitFor();
    await page.getByRole('heading', { name: 'Timeline' }).waitFor();
    // The session as our trace header tells it: swaks spoke plain ESMTP.
    await page.getByText('no (ESMTP)').waitFor();
    await page.locator('pre.reply', { hasText: /by mx\.postroom\.test \(Postroom/ }).waitFor();
    await page.getByText('route inbox').or(page.locator('.timeline code', { hasText: 'inbox' })).first().waitFor();
    await page.getByRole('tab', { name: 'Headers' }).click();
    await page.getByRole('rowheader', { name: 'Subject' }).waitFor();
    await page.getByRole('tab', { name: 'Raw' }).click();
    await page.locator('pre.body', { hasText: 'Received:' }).waitFor();
    await page.getByRole('tab', { name: 'Parts' }).click();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: /Download part \d+ data\.bin/ }).click()]);
    assert.equal(download.suggestedFilename(), 'data.bin');
    const saved = path.join(tmp.dir, 'downloaded.bin');
    await download.saveAs(saved);
    assert.deepEqual(readFileSync(saved), attachment);
  });

  step('a dead webhook delivery is replayed from the message page and its new attempt appears', async () => {
    const id = await inbound('hook@postroom.test', 'alice@example.org', 'From: alice@example.org\nSubject: For the hook\nMessage-ID: <hook1@example.org>\n\nhello hook\n');
    await waitFor(async () => {
      const r = (await (await pr.api(`/api/v1/deliveries?message=${id}`)).json()) as { items: { status: string }[] };
      return r.items[0]?.status === 'dead';
    }, 'the webhook delivery to die');
    await page.goto(`${pr.baseUrl}/#/messages/${id}`);
    await page.getByText('target down for the test').first().waitFor();
    assert.equal(await page.locator('.attempt').count(), 1);
    hookHealthy = true;
    await page.getByRole('button', { name: 'Replay this delivery' }).click();
    await page.locator('.attempt-done').waitFor({ timeout: 15_000 });
    assert.equal(await page.locator('.attempt').count(), 2);
    // The target's answer to the attempt that succeeded, as its receipt says it.
    await page.getByText("Target's answer:").waitFor();
    assert.match(await page.locator('.delivery .ok').innerText(), /HTTP 204/);
  });

  step('deliveries page lists by status and retries one', async () => {
    await page.goto(`${pr.baseUrl}/#/deliveries?status=done`);
    await page.locator('tr[data-row]').first().waitFor();
    await page.getByRole('button', { name: 'Retry', exact: true }).first().click();
    await page.getByText('Replayed 1 delivery').waitFor();
    // Retry all matching: counted by the server (a dry run), confirmed, then replayed by the
    // server at a pace (staggered due times), not request by request from the browser.
    // The list is read once when the page opens: the delivery just retried must be done again
    // first, or a loaded machine shows an empty page that never fills.
    await waitFor(
      async () => ((await (await pr.api('/api/v1/deliveries?route=inbox&status=pending&limit=1')).json()) as { items: unknown[] }).items.length === 0 || undefined,
      'the retried delivery done again',
      30_000,
    );
    await page.goto(`${pr.baseUrl}/#/deliveries?route=inbox&status=done`);
    await page.locator('tr[data-row]').first().waitFor();
    const matching = ((await (await pr.api('/api/v1/deliveries?route=inbox&status=done&limit=500')).json()) as { items: unknown[] }).items.length;
    assert.ok(matching >= 1);
    confirming = true;
    try {
      await page.getByRole('button', { name: 'Retry all matching…' }).click();
      await page.getByText(`Replayed ${matching} of ${matching} matching`).waitFor();
    } finally {
      confirming = false;
    }
    assert.equal(confirms.length, 1);
    assert.match(confirms[0], new RegExp(`^Retry ${matching} done deliveries\\? They are replayed 10 a second`));
    const audit = (await (await pr.api('/api/v1/audit?action=delivery.replay')).json()) as { items: { actor: string; detail: { dryRun: boolean; replayed: number; filter: unknown } }[] };
    const real = audit.items.find((e) => !e.detail.dryRun);
    assert.ok(real, JSON.stringify(audit.items));
    assert.deepEqual([real.detail.replayed, real.detail.filter], [matching, { route: 'inbox', status: 'done' }]);
    if (users) assert.equal(real.actor, 'ada');
  });

  step('the route tester says which route takes each recipient, the captures and the RCPT reply', async () => {
    await page.goto(`${pr.baseUrl}/#/routes`);
    await page.getByLabel('Sender (MAIL FROM)').fill('alice@example.org');
    await page.getByLabel(/Recipients/).fill('orders-42@postroom.test, nobody@else.test');
    await page.getByRole('button', { name: 'Test' }).click();
    const table = page.locator('#test-result');
    await table.waitFor();
    const text = await table.innerText();
    assert.match(text, /orders-42@postroom\.test\s+orders/);
    assert.match(text, /"n":"42"/);
    assert.match(text, /250 2\.1\.5/);
    assert.match(text, /550 .*nobody@else\.test/);
  });

  step('a held group post is approved from the objects page', async () => {
    await inbound('talk@lists.test', 'guest@else.test', 'From: guest@else.test\nSubject: May I post?\nMessage-ID: <held1@else.test>\n\nplease\n');
    await waitFor(async () => {
      const r = (await (await pr.api(`/api/v1/groups/${groupId}/posts?status=held`)).json()) as { items: unknown[] };
      return r.items.length === 1;
    }, 'a held post');
    await page.goto(`${pr.baseUrl}/#/objects`);
    await page.locator('ul.held').getByRole('link', { name: 'May I post?' }).waitFor();
    await page.getByRole('table', { name: 'Threads of Talk' }).getByRole('link', { name: 'May I post?' }).waitFor();
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.getByText('Approved: relaying').waitFor();
    const r = (await (await pr.api(`/api/v1/groups/${groupId}/posts?status=held`)).json()) as { items: unknown[] };
    assert.equal(r.items.length, 0);
    // And one rejected.
    await inbound('talk@lists.test', 'spam@else.test', 'From: spam@else.test\nSubject: Buy now\nMessage-ID: <held2@else.test>\n\nbuy\n');
    await waitFor(async () => {
      const h = (await (await pr.api(`/api/v1/groups/${groupId}/posts?status=held`)).json()) as { items: unknown[] };
      return h.items.length === 1;
    }, 'a second held post');
    await page.reload();
    await page.locator('ul.held').getByRole('link', { name: 'Buy now' }).waitFor();
    await page.getByRole('button', { name: 'Reject' }).click();
    await page.getByText('Rejected', { exact: true }).waitFor();
    const after = (await (await pr.api(`/api/v1/groups/${groupId}/posts?status=held`)).json()) as { items: unknown[] };
    assert.equal(after.items.length, 0);
  });

  step('send a test message from the console: it goes through intake and is listed', async () => {
    await page.goto(`${pr.baseUrl}/#/send`);
    await page.getByLabel('Recipients').fill('console-test@postroom.test');
    await page.getByLabel('Subject').fill('Sent from the console');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByText('Kept as').waitFor();
    await page.getByText('Kept as').getByRole('link').click();
    await page.getByRole('heading', { name: 'Sent from the console' }).waitFor();
    // Pasted raw source goes through the same door, byte for byte.
    await page.goto(`${pr.baseUrl}/#/send`);
    await page.getByLabel('Recipients').fill('console-test@postroom.test');
    await page.getByLabel('Paste raw source').check();
    const pasted = 'From: paste@example.org\nSubject: Pasted raw source\nMessage-ID: <pasted1@example.org>\n\npasted body\n';
    await page.getByLabel(/Raw message/).fill(pasted);
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByText('Kept as').getByRole('link').click();
    await page.getByRole('heading', { name: 'Pasted raw source' }).waitFor();
    const id = page.url().split('/').pop()!;
    const raw = await (await pr.api(`/api/v1/messages/${id}/raw?trace=0`)).text();
    assert.equal(raw, pasted.replace(/\n/g, '\r\n'));
  });

  step('objects: every kind renders, or says what to do next; the API description is readable', async () => {
    const folder = await pr.api('/api/v1/folders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'invoices' }) });
    assert.equal(folder.status, 201, await folder.clone().text());
    for (const [tab, text] of [['groups', 'Talk'], ['folders', 'invoices'], ['workflows', 'No workflows'], ['tracker', 'No work packages'], ['mail', 'No mail accounts']]) {
      await page.goto(`${pr.baseUrl}/#/objects?tab=${tab}`);
      await page.locator('#objects-panel').getByText(text).first().waitFor();
      assert.equal(await page.getByRole('alert').count(), 0, `${tab}: ${await page.locator('#objects-panel').innerText()}`);
    }
    await page.goto(`${pr.baseUrl}/#/api`);
    await page.getByRole('heading', { name: 'messages', exact: true }).waitFor();
    await page.getByText('GET /api/v1/messages', { exact: true }).first().waitFor();
  });

  step('tracker: a work package made from mail, and a reply, show on the objects page with its journal', async () => {
    const post = async (url: string, body?: unknown, method = 'POST') => {
      const res = await pr.api(url, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      assert.ok(res.ok, `${method} ${url}: ${res.status} ${await res.text()}`);
    };
    await post('/api/v1/tracker/users', { login: 'alice', email: 'alice@example.org', name: 'Alice Adams' });
    await post('/api/v1/tracker/projects', { identifier: 'test_project', name: 'Test project' });
    await post('/api/v1/tracker/projects/test_project/members/alice', undefined, 'PUT');
    for (const [segment, name] of [['types', 'Bug'], ['statuses', 'New'], ['priorities', 'Normal']]) await post(`/api/v1/tracker/${segment}`, { name, isDefault: true });
    await inbound('support@tracker.test', 'alice@example.org', 'From: Alice Adams <alice@example.org>\nSubject: Printer on fire\nMessage-ID: <wp1@example.org>\n\nIt smokes.\n');
    const wp = await waitFor(async () => {
      const r = (await (await pr.api('/api/v1/tracker/work-packages')).json()) as { items: { id: number }[] };
      return r.items[0];
    }, 'the work package');
    await inbound('support@tracker.test', 'alice@example.org', `From: Alice Adams <alice@example.org>\nSubject: Re: [#${wp.id}] Printer on fire\nMessage-ID: <wp2@example.org>\n\nNow it is out: <b onclick=x>water</b>.\n`);
    await waitFor(async () => {
      const r = (await (await pr.api(`/api/v1/tracker/work-packages/${wp.id}`)).json()) as { journals: unknown[] };
      return r.journals.length >= 2;
    }, 'the reply in the journal');
    await page.goto(`${pr.baseUrl}/#/objects?tab=tracker`);
    await page.getByRole('link', { name: 'Printer on fire' }).click();
    await page.getByRole('heading', { name: /Printer on fire/ }).waitFor();
    await page.locator('.timeline pre', { hasText: 'Now it is out: <b onclick=x>water</b>.' }).waitFor();
    assert.ok((await page.locator('.timeline').getByRole('link', { name: 'mail' }).count()) >= 1, 'a journal entry links the mail it came from');
  });

  step('system page shows the queue and the last hour', async () => {
    await page.goto(`${pr.baseUrl}/#/system`);
    await page.getByRole('img', { name: /messages received per minute/ }).waitFor();
    assert.match(await page.locator('main').innerText(), /smtp on 127\.0\.0\.1:\d+/);
    assert.equal(await page.getByRole('link', { name: '/metrics' }).getAttribute('href'), '/metrics');
    await page.getByRole('button', { name: 'Show metrics here' }).click();
    await page.locator('#metrics', { hasText: 'postroom_messages_total' }).waitFor();
  });

  const HOSTILE_SUBJECT = '<img src=x onerror="window.__pwned=\'subject\'">';

  step('hostile mail renders without running anything, in the list, the page and every tab', async () => {
    const html = [
      '<html><head><style>body{background:url(EXFIL/css)}</style></head><body>',
      '<script>window.__pwned="script";parent.__pwned="script"</script>',
      '<img src=x onerror="parent.__pwned=\'onerror\'">',
      '<a id=js href="javascript:parent.__pwned=\'link\'">click</a>',
      '<img src="EXFIL/pixel.gif">',
      '<div style="background:url(EXFIL/inline-css)">x</div>',
      '<svg xmlns="http://www.w3.org/2000/svg"><script>parent.__pwned="svg"</script></svg>',
      '<iframe src="EXFIL/frame"></iframe><form action="EXFIL/form"><button>go</button></form>',
      '</body></html>',
    ]
      .join('\n')
      .replaceAll('EXFIL', exfilUrl);
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" onload="parent.__pwned=\'svg-file\'"><script>parent.__pwned="svg-file"</script></svg>';
    const raw = [
      'From: "<b onmouseover=alert(1)>" <evil@example.org>',
      `Subject: ${HOSTILE_SUBJECT}`,
      'Message-ID: <hostile1@example.org>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/html; charset=utf-8',
      '',
      html,
      '--b1',
      'Content-Type: image/svg+xml',
      'Content-Disposition: attachment; filename="<img src=x onerror=parent.__pwned=1>.svg"',
      '',
      svg,
      '--b1--',
      '',
    ].join('\n');
    const id = await inbound('someone@postroom.test', 'evil@example.org', raw);
    await waitFor(async () => ((await (await pr.api(`/api/v1/messages/${id}`)).json()) as { parseStatus: string }).parseStatus === 'parsed', 'parsed');
    await page.goto(`${pr.baseUrl}/#/messages`);
    await page.getByRole('link', { name: HOSTILE_SUBJECT }).waitFor();
    await page.goto(`${pr.baseUrl}/#/messages/${id}`);
    await page.getByRole('heading', { name: HOSTILE_SUBJECT }).waitFor();
    for (const tab of ['Headers', 'Raw', 'Parts', 'HTML']) {
      await page.getByRole('tab', { name: tab }).click();
      await page.waitForTimeout(300);
    }
    const frame = page.locator('iframe.mail');
    await frame.waitFor();
    assert.equal(await frame.getAttribute('sandbox'), '', 'the frame allows nothing');
    // Let the frame load and anything in it that could run, run.
    await page.waitForTimeout(1000);
    await page.frameLocator('iframe.mail').locator('#js').click({ timeout: 5000 }).catch(() => {});
    await page.waitForTimeout(300);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned), undefined);
    assert.deepEqual(dialogs, []);
    assert.deepEqual(exfil, [], 'mail HTML loaded nothing remote');
    // The console page itself holds none of the markup as elements.
    assert.equal(await page.locator('main img[src=x], main script, main svg script').count(), 0);
    // What the browser blocked was reported as CSP violations (when it tried at all).
    const csp = consoleLines.filter((l) => /Content Security Policy/i.test(l));
    assert.ok(csp.every((l) => !/console\/app\.js/.test(l)), `the console's own code broke its policy: ${csp.join('\n')}`);
    // ...and the mail's own attempts to reach the network were among them: the policy did the blocking.
    assert.ok(csp.some((l) => l.includes(exfilUrl)), `no CSP report names the blocked remote loads:\n${consoleLines.join('\n')}`);
    // Remote content on request: script still never runs. Signed in with the API token, the
    // console's own policy keeps remote loads out even then, and says so.
    await page.getByRole('button', { name: 'Load remote content' }).click();
    if (users) await waitFor(() => (exfil as string[]).includes('/pixel.gif'), 'the remote image to load after the click');
    else {
      await page.getByText('sign in as a user to see it').waitFor();
      await page.waitForTimeout(500);
      assert.deepEqual(exfil, []);
    }
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned), undefined);
    assert.deepEqual(dialogs, []);
  });

  step('the message page shows the parse defects and a bounce\'s delivery-status fields, escaped', async () => {
    const raw = [
      'From: MAILER-DAEMON@mx.example',
      'Subject: Undelivered Mail Returned to Sender',
      'Date: not a date at all',
      'Message-ID: <bounce1@mx.example>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="r1"',
      '',
      '--r1',
      'Content-Type: text/plain',
      '',
      'The mail could not be delivered.',
      '--r1',
      'Content-Type: message/delivery-status',
      '',
      'Reporting-MTA: dns; mx.example',
      '',
      'Final-Recipient: rfc822; gone@example.net',
      'Action: failed',
      'Status: 5.1.1',
      `Diagnostic-Code: smtp; 550 5.1.1 <img src=x onerror="parent.__pwned='dsn'"> no such user`,
      '--r1--',
      '',
    ].join('\n');
    const id = await inbound('someone@postroom.test', 'MAILER-DAEMON@mx.example', raw);
    const m = await waitFor(async () => {
      const r = (await (await pr.api(`/api/v1/messages/${id}`)).json()) as { parseStatus: string; defects: string[] };
      return r.parseStatus === 'parsed' ? r : undefined;
    }, 'parsed');
    assert.ok(m.defects.includes('invalid-date'), JSON.stringify(m.defects));
    await page.goto(`${pr.baseUrl}/#/messages/${id}`);
    await page.getByRole('heading', { name: 'Reports' }).waitFor();
    await page.getByRole('list', { name: 'Defects' }).getByText('invalid-date').waitFor();
    const reports = await page.locator('.report').innerText();
    assert.match(reports, /message\/delivery-status/);
    assert.match(reports, /Final-Recipient\s+rfc822; gone@example\.net/i);
    assert.match(reports, /Status\s+5\.1\.1/i);
    assert.ok(reports.includes(`<img src=x onerror="parent.__pwned='dsn'">`), reports);
    await page.getByRole('tab', { name: 'Parts' }).click();
    await page.getByRole('list', { name: 'Defects' }).getByText('invalid-date').waitFor();
    assert.equal(await page.locator('main img[src=x]').count(), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned), undefined);
    assert.deepEqual(dialogs, []);
  });

  step('the HTML route sends the sandbox policy itself', async () => {
    const list = (await (await pr.api('/api/v1/messages?q=message-id:hostile1')).json()) as { items: { id: string }[] };
    const res = await pr.api(`/api/v1/messages/${list.items[0].id}/html`);
    assert.match(res.headers.get('content-security-policy') ?? '', /^default-src 'none'; img-src data: cid:;.*sandbox$/);
    const remote = await pr.api(`/api/v1/messages/${list.items[0].id}/html?remote=1`);
    assert.match(remote.headers.get('content-security-policy') ?? '', /sandbox/);
    assert.doesNotMatch(remote.headers.get('content-security-policy') ?? '', /script/);
  });

  step('the Theme button switches light and dark over the system\'s choice, and the choice stays', async () => {
    await page.emulateMedia({ colorScheme: 'light' });
    await page.goto(`${pr.baseUrl}/#/messages`);
    await page.locator('main h1').waitFor();
    const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const light = await bg();
    await page.getByRole('button', { name: 'Theme', exact: true }).click();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    const dark = await bg();
    assert.notEqual(dark, light);
    await page.reload();
    await page.locator('main h1').waitFor();
    assert.equal(await bg(), dark, 'the choice is remembered');
    await page.getByRole('button', { name: 'Theme', exact: true }).click();
    assert.equal(await bg(), light);
    await page.evaluate(() => localStorage.removeItem('postroom-theme'));
  });

  step('with the event stream blocked (a buffering proxy), the list falls back to polling and new mail still appears', async () => {
    await page.route('**/api/v1/messages/events**', (r) => r.abort());
    try {
      await page.goto(`${pr.baseUrl}/#/messages`);
      await page.reload();
      await page.getByText('Live (polling)').waitFor({ timeout: 20_000 });
      await inbound('someone@postroom.test', 'alice@example.org', 'From: alice@example.org\nSubject: Seen by polling\nMessage-ID: <polled1@example.org>\n\nx\n');
      await page.getByRole('link', { name: 'Seen by polling' }).waitFor({ timeout: 15_000 });
    } finally {
      await page.unroute('**/api/v1/messages/events**');
    }
  });

  step('accessibility basics: every control is named, text has contrast, focus is visible; light and dark', async () => {
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const name of ['messages', `messages/${liveId}`, 'deliveries', 'routes', 'objects', 'objects?tab=folders', 'system', 'send', 'api', 'access']) {
        await page.goto(`${pr.baseUrl}/#/${name}`);
        await page.locator('main h1').first().waitFor();
        await page.waitForTimeout(200);
        const problems = (await page.evaluate(A11Y_CHECK)) as string[];
        assert.deepEqual(problems.slice(0, 5), [], `${name} (${scheme})`);
      }
      // Focus is visible: tabbing to a control draws an outline.
      await page.goto(`${pr.baseUrl}/#/messages`);
      await page.locator('main h1').waitFor();
      await page.keyboard.press('Tab');
      await page.keyboard.press('Tab');
      const outline = (await page.evaluate(
        '(() => { const s = getComputedStyle(document.activeElement); return { style: s.outlineStyle, width: parseFloat(s.outlineWidth) }; })()',
      )) as { style: string; width: number };
      assert.ok(outline.style !== 'none' && outline.width >= 2, `focus outline: ${JSON.stringify(outline)}`);
    }
    await page.emulateMedia({ colorScheme: 'light' });
  });

  step('works at phone width: no sideways scrolling on the list and the message', async () => {
    await page.setViewportSize({ width: 390, height: 800 });
    for (const name of ['messages', `messages/${liveId}`]) {
      await page.goto(`${pr.baseUrl}/#/${name}`);
      await page.locator('main h1').first().waitFor();
      const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      assert.ok(scroll <= width + 1, `${name}: ${scroll} > ${width}`);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  step('page weight before mail content stays under 150 KiB', async () => {
    const sizes: number[] = [];
    const onResponse = async (r: import('playwright-core').Response) => {
      if (new URL(r.url()).pathname.startsWith('/api/')) return;
      sizes.push((await r.body().catch(() => Buffer.alloc(0))).length);
    };
    const p = await context.newPage();
    p.on('response', (r) => void onResponse(r));
    await p.goto(`${pr.baseUrl}/#/messages`);
    await p.locator('main h1').waitFor();
    await p.waitForTimeout(300);
    await p.close();
    const total = sizes.reduce((a, b) => a + b, 0);
    assert.ok(total > 0 && total < 150 * 1024, `${total} bytes`);
  });

  /** The dead delivery of a fresh message to the webhook (which fails again). */
  async function deadDelivery(): Promise<{ message: string; delivery: string }> {
    hookHealthy = false;
    const message = await inbound('hook@postroom.test', 'alice@example.org', `From: alice@example.org\nSubject: dead again\nMessage-ID: <dead${Date.now()}@example.org>\n\nx\n`);
    const delivery = await waitFor(async () => {
      const r = (await (await pr.api(`/api/v1/deliveries?message=${message}`)).json()) as { items: { id: string; status: string }[] };
      return r.items[0]?.status === 'dead' ? r.items[0].id : undefined;
    }, 'a dead delivery');
    return { message, delivery: delivery as string };
  }

  step('a state-changing request of a session without the CSRF token is refused', async (t) => {
    if (!users) return void t.skip('this server has no user sessions (the users branch brings them)');
    const { delivery } = await deadDelivery();
    const status = await page.evaluate(
      `fetch('/api/v1/deliveries/${delivery}/retry', { method: 'POST', credentials: 'same-origin' }).then((r) => r.status)`,
    );
    assert.equal(status, 403);
  });

  step('an admin adds a user, changes its role, makes a token (shown once), revokes it, and reads the audit log', async (t) => {
    if (!users) return void t.skip('this server has no user accounts (the users branch brings them)');
    await page.goto(`${pr.baseUrl}/#/access`);
    const add = page.locator('#user-add');
    await add.getByLabel('Name').fill('otto');
    await add.getByLabel('Role').selectOption('operator');
    await add.getByLabel('Password').fill(PASSWORD);
    await add.getByRole('button', { name: 'Add user' }).click();
    await page.getByLabel('Role of otto').waitFor();
    assert.equal(await page.getByLabel('Role of otto').inputValue(), 'operator');
    await page.getByLabel('Role of otto').selectOption('viewer');
    await waitFor(async () => {
      const list = (await (await pr.api('/api/v1/users')).json()) as { items: { name: string; role: string }[] };
      return list.items.find((u) => u.name === 'otto')?.role === 'viewer';
    }, 'otto to be a viewer');
    await page.reload();
    assert.equal(await page.getByLabel('Role of otto').inputValue(), 'viewer');
    await page.getByLabel('What it is for').fill('ci script');
    await page.getByLabel('Scope').selectOption('read');
    await page.getByRole('button', { name: 'Make a token' }).click();
    const token = (await page.locator('#token-value').innerText()).trim();
    const use = () => fetch(`${pr.baseUrl}/api/v1/messages?limit=1`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal((await use()).status, 200);
    await page.reload();
    await page.getByRole('button', { name: 'Revoke token ci script' }).waitFor();
    assert.equal(await page.locator('#token-value').count(), 0, 'the value is shown once');
    await page.getByRole('button', { name: 'Revoke token ci script' }).click();
    await page.getByText(/^revoked/).first().waitFor();
    assert.equal((await use()).status, 401);
    await page.goto(`${pr.baseUrl}/#/access?action=user.create`);
    await page.locator('table.audit').getByText('user:otto').waitFor();
    assert.match(await page.locator('table.audit').innerText(), /ada\s+user\.create\s+user:otto/);
  });

  step('signs out', async () => {
    await page.goto(`${pr.baseUrl}/#/messages`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  });

  step('a viewer sees no replay button, and the API refuses the replay with 403', async (t) => {
    if (!users) return void t.skip('this server has no user accounts (the users branch brings them)');
    const { message, delivery } = await deadDelivery();
    await signInAs('vera');
    await page.goto(`${pr.baseUrl}/#/messages/${message}`);
    await page.locator('.delivery').waitFor();
    assert.equal(await page.getByRole('button', { name: /Replay/ }).count(), 0);
    await page.goto(`${pr.baseUrl}/#/deliveries?status=dead`);
    await page.locator('tr[data-row]').first().waitFor();
    assert.equal(await page.getByRole('button', { name: /Retry/ }).count(), 0);
    const status = await page.evaluate(`(async () => {
      const s = await (await fetch('/api/v1/session')).json();
      const r = await fetch('/api/v1/deliveries/${delivery}/retry', { method: 'POST', headers: { 'x-csrf-token': s.csrfToken } });
      return r.status;
    })()`);
    assert.equal(status, 403);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  });
});
