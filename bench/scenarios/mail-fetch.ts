import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startDovecot, testMessage, type Dovecot } from '../../test/helpers/dovecot.js';
import { startPostroom, type BenchServer } from '../lib/servers.js';
import type { Measurement, Scenario } from '../lib/types.js';

/**
 * Fetching from a real Dovecot into `postroom serve`: pickup latency from IMAP APPEND
 * to kept (fsync + commit), with IDLE, p50/p99; and messages per second kept from a folder of
 * 10,000 (moved to Done after keeping, as a real deployment would). Dovecot itself delays IDLE
 * notifications by about half a second, which the latency includes; its own number is reported
 * beside ours as the baseline.
 */

async function api(pr: BenchServer, method: string, p: string, body?: unknown): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${pr.httpPort}${p}`, {
    method,
    headers: { authorization: `Bearer ${pr.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) throw new Error(`${method} ${p}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long Dovecot takes to tell an idling client about an APPEND (the floor of any pickup). */
async function dovecotIdleDelay(dc: Dovecot, n: number): Promise<number[]> {
  const c = await dc.client();
  await c.mailboxOpen('Probe').catch(async () => {
    await c.mailboxCreate('Probe');
    await c.mailboxOpen('Probe');
  });
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let t0 = 0;
    const got = new Promise<number>((r) => c.once('exists', () => r(Date.now() - t0)));
    c.idle().catch(() => {});
    await sleep(100);
    t0 = Date.now();
    await dc.append('Probe', [testMessage(`probe-${i}`)]);
    out.push(await got);
    await c.noop();
  }
  await c.logout();
  return out;
}

/** Write messages straight into a Maildir folder (far faster than APPEND for 10,000), owned by the mail user. */
function fillMaildir(dc: Dovecot, folder: string, n: number): void {
  const uid = Number(execFileSync('id', ['-u', 'nobody']).toString());
  const gid = Number(execFileSync('id', ['-g', 'nobody']).toString());
  const base = path.join(dc.dir, 'mail', dc.user, 'Maildir', `.${folder}`);
  for (const d of ['', 'new', 'cur', 'tmp']) {
    mkdirSync(path.join(base, d), { recursive: true });
    chownSync(path.join(base, d), uid, gid);
  }
  for (let i = 0; i < n; i++) {
    const f = path.join(base, 'new', `${1_700_000_000 + i}.M${i}P1.bench`);
    writeFileSync(f, testMessage(`bulk-${i}`, { body: 'x'.repeat(2000) }));
    chownSync(f, uid, gid);
  }
}

export const mailFetch: Scenario = {
  name: 'mail-fetch',
  description: 'IMAP (Dovecot) → postroom serve: APPEND-to-kept latency with IDLE (p50/p99), msgs/s from a folder of 10,000',
  async run(ctx) {
    const wantLatency = ctx.wants('fetch.imap.idle.p50') || ctx.wants('fetch.imap.idle.p99');
    const wantBulk = ctx.wants('fetch.imap.bulk');
    if (!wantLatency && !wantBulk) return [];
    const dc = await startDovecot();
    const pr = await startPostroom(ctx, 'mail: { rescanInterval: 1s }');
    const out: Measurement[] = [];
    try {
      const db = new Database(path.join(pr.dataDir!, 'postroom.db'), { readonly: true, fileMustExist: true });
      const kept = db.prepare('SELECT count(*) AS n FROM messages WHERE message_id = ?');
      const profile = await api(pr, 'POST', '/api/v1/email/profiles', { name: 'bench', protocol: 'imap', host: dc.host, port: dc.imapPort, tls: 'none' });
      const account = await api(pr, 'POST', '/api/v1/email/accounts', { profile: profile.id, username: dc.user, password: dc.pass, address: 'bench@example.org' });
      const inbox = account.folders.find((f: { path: string }) => f.path === 'INBOX');

      if (wantLatency) {
        const n = ctx.quick ? 20 : 100;
        ctx.log(`IDLE pickup: ${n} APPENDs, one at a time`);
        const floor = await dovecotIdleDelay(dc, ctx.quick ? 5 : 20);
        await api(pr, 'PATCH', `/api/v1/email/folders/${inbox.id}`, { enabled: true, moveOnSuccess: 'Done' });
        for (let t = Date.now(); !(await api(pr, 'GET', `/api/v1/email/folders/${inbox.id}`)).health.lastOkAt; ) {
          if (Date.now() - t > 20_000) throw new Error('the folder was never polled');
          await sleep(50);
        }
        const lat: number[] = [];
        for (let i = 0; i < n; i++) {
          await sleep(50 + Math.random() * 100);
          const t0 = Date.now();
          await dc.append('INBOX', [testMessage(`lat-${i}`)]);
          while ((kept.get(`<msg-lat-${i}@test.example>`) as { n: number }).n === 0) {
            if (Date.now() - t0 > 30_000) throw new Error(`message ${i} not kept within 30 s`);
            await sleep(2);
          }
          lat.push(Date.now() - t0);
        }
        await api(pr, 'PATCH', `/api/v1/email/folders/${inbox.id}`, { enabled: false });
        const note = `${n} messages; Dovecot's own IDLE notice p50 ${pct(floor, 50)} ms`;
        out.push(
          { id: 'fetch.imap.idle.p50', label: 'IMAP APPEND → kept, IDLE, p50', unit: 'ms', value: pct(lat, 50), baseline: { name: 'dovecot IDLE notice', value: pct(floor, 50) }, note },
          { id: 'fetch.imap.idle.p99', label: 'IMAP APPEND → kept, IDLE, p99', unit: 'ms', value: pct(lat, 99), target: { op: '<=', value: 1000 }, baseline: { name: 'dovecot IDLE notice', value: pct(floor, 99) }, note, details: { samples: lat } },
        );
      }

      if (wantBulk) {
        const n = ctx.quick ? 1000 : 10_000;
        ctx.log(`bulk: a folder of ${n}`);
        await api(pr, 'POST', '/api/v1/email/folders/refresh', undefined).catch(() => {});
        const c = await dc.client();
        await c.mailboxCreate('Bulk').catch(() => {});
        await c.logout();
        fillMaildir(dc, 'Bulk', n);
        const refreshed = await api(pr, 'POST', `/api/v1/email/folders/refresh?account=${account.id}`);
        const bulk = refreshed.items[0].folders.find((f: { path: string }) => f.path === 'Bulk');
        const links = db.prepare('SELECT count(*) AS n FROM mail_links WHERE folder = ?');
        const t0 = Date.now();
        await api(pr, 'PATCH', `/api/v1/email/folders/${bulk.id}`, { enabled: true, moveOnSuccess: 'BulkDone' });
        while ((links.get(bulk.id) as { n: number }).n < n) {
          if (Date.now() - t0 > 600_000) throw new Error('bulk fetch did not finish in 10 minutes');
          await sleep(50);
        }
        const seconds = (Date.now() - t0) / 1000;
        out.push({
          id: 'fetch.imap.bulk',
          label: `IMAP folder of ${n} (2 KiB each) → kept and moved`,
          unit: 'msgs/s',
          value: Math.round(n / seconds),
          note: `${seconds.toFixed(1)} s`,
          details: { messages: n, seconds },
        });
      }
      db.close();
    } finally {
      await pr.stop();
      await dc.stop();
    }
    return out;
  },
};
