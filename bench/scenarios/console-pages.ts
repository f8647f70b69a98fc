import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { startPostroom, type Postroom } from '../../src/app.js';
import { validateConfig } from '../../src/config/load.js';
import { idFloor } from '../../src/core/ids.js';
import { insertMessages, messageIdAtDepth, newMessageRow } from '../../src/store/messages.js';
import type { MessagesTable } from '../../src/store/schema.js';
import { pct } from '../lib/percentile.js';
import type { BenchContext, Measurement, Scenario } from '../lib/types.js';

// The console's two busiest pages on a store holding 1 M messages: the data each page asks
// the API for, timed inside the server (fastify inject: routing, queries, serialisation; no
// socket), p50 and p99 over many requests. Rows go in through the store's own insertMessages,
// in batches; a few real messages go through intake so the message page has parts and deliveries.

const ROWS = 1_000_000;
const BATCH = 500;
const REQUESTS = 200;
const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

/** An id at a given instant (sorts by time like newId), unique by its counter. */
function idAt(ms: number, n: number): string {
  let suffix = '';
  for (let v = n, k = 0; k < 16; k++, v = Math.floor(v / 32)) suffix = CROCKFORD[v % 32] + suffix;
  return idFloor(ms) + suffix;
}

function row(i: number, ms: number): MessagesTable {
  const r = newMessageRow(
    idAt(ms, i),
    { mailFrom: `sender${i % 5000}@example.org`, rcptTo: [`orders-${i % 100}@postroom.test`], ingress: 'smtp', clientIp: '192.0.2.1', receivedAt: new Date(ms) },
    { sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', size: 2000 + (i % 50_000) },
    { messageId: `<m${i}@example.org>`, subject: `Order ${i} confirmation`, from: `Sender ${i % 5000} <sender${i % 5000}@example.org>`, date: null },
    null,
  );
  return { ...r, status: 'delivered', parse_status: 'parsed', parsed_at: r.received_at, dedup_key: null };
}

async function fill(app: Postroom, rows: number, log: (s: string) => void): Promise<void> {
  const start = Date.now() - 30 * 86_400_000;
  const step = (30 * 86_400_000 - 3_600_000) / rows;
  const started = Date.now();
  for (let i = 0; i < rows; ) {
    await app.db.kysely.transaction().execute(async (trx) => {
      // Twenty batches per transaction: one commit (and one WAL sync) per 10,000 rows.
      for (let b = 0; b < 20 && i < rows; b++) {
        const batch: MessagesTable[] = [];
        for (let k = 0; k < BATCH && i < rows; k++, i++) batch.push(row(i, Math.floor(start + i * step)));
        await insertMessages(trx, batch);
      }
    });
    if (i % 100_000 === 0) log(`  ${i} rows (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  }
}

async function timed(app: Postroom, n: number, request: () => { method: 'GET' | 'POST'; url: string; payload?: unknown }[]): Promise<{ p50: number; p99: number }> {
  const inject = app.apiServer!.fastify.inject.bind(app.apiServer!.fastify);
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    for (const r of request()) {
      const res = await inject({ method: r.method, url: r.url, payload: r.payload as string, headers: { authorization: `Bearer ${app.apiToken}` } });
      if (res.statusCode >= 400) throw new Error(`${r.method} ${r.url}: ${res.statusCode} ${res.body.slice(0, 200)}`);
    }
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { p50: pct(times, 50), p99: pct(times, 99) };
}

export const consolePages: Scenario = {
  name: 'console-pages',
  description: 'server time of the console\'s messages and message pages (their API calls) with 1 M messages stored (SQLite)',
  async run(ctx: BenchContext) {
    const ids = ['console.messages.p99', 'console.messages.deep.p99', 'console.messages.search.p99', 'console.messages.search-none.p99', 'console.message.p99'];
    if (!ids.some((i) => ctx.wants(i))) return [];
    const rows = ctx.quick ? ROWS / 10 : ROWS;
    const dir = mkdtempSync(path.join(ctx.tmpRoot, 'postroom-console-bench-'));
    const config = validateConfig({
      dataDir: dir,
      log: { level: 'silent' },
      smtp: { enabled: false },
      http: { listen: '127.0.0.1:0', apiToken: 'bench-token-0123456789abcdef' },
      routes: [{ name: 'orders', match: { recipient: 'orders-{n}@postroom.test' }, deliver: [{ discard: {} }] }],
    });
    const app = await startPostroom(config);
    try {
      ctx.log(`console-pages: inserting ${rows} messages`);
      await fill(app, rows, ctx.log);
      // A real one, through intake: parsed, routed, delivered, with parts.
      const res = await app.apiServer!.fastify.inject({
        method: 'POST',
        url: '/api/v1/inbound?recipient=orders-1@postroom.test&sender=alice@example.org',
        headers: { authorization: `Bearer ${app.apiToken}`, 'content-type': 'message/rfc822' },
        payload: 'From: alice@example.org\r\nSubject: real one\r\nMessage-ID: <real@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--b--\r\n',
      });
      const real = (JSON.parse(res.body) as { id: string }).id;
      for (let i = 0; i < 200; i++) {
        const d = await app.apiServer!.fastify.inject({ url: `/api/v1/deliveries?message=${real}`, headers: { authorization: `Bearer ${app.apiToken}` } });
        if ((JSON.parse(d.body) as { items: { status: string }[] }).items[0]?.status === 'done') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const midId = (await messageIdAtDepth(app.db.kysely, undefined, Math.floor(rows / 2)))!;
      const deepCursor = Buffer.from(JSON.stringify({ v: 1, before: midId })).toString('base64url');
      const delivery = (JSON.parse((await app.apiServer!.fastify.inject({ url: `/api/v1/deliveries?message=${real}`, headers: { authorization: `Bearer ${app.apiToken}` } })).body) as { items: { id: string }[] }).items[0].id;

      const out: Measurement[] = [];
      const add = (id: string, label: string, r: { p50: number; p99: number }, note: string) => {
        ctx.log(`  ${label}: p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms`);
        if (ctx.wants(id)) out.push({ id, label, unit: 'ms', value: Number(r.p99.toFixed(1)), target: { op: '<=', value: 200 }, note: `p50 ${r.p50.toFixed(1)} ms; ${note}`, details: { rows, p50: r.p50, p99: r.p99, requests: REQUESTS } });
      };
      add('console.messages.p99', `messages page, first 50 of ${rows}`, await timed(app, REQUESTS, () => [{ method: 'GET', url: '/api/v1/messages?limit=50' }]), 'newest first');
      add('console.messages.deep.p99', 'messages page, 50 from the middle (cursor)', await timed(app, REQUESTS, () => [{ method: 'GET', url: `/api/v1/messages?limit=50&cursor=${deepCursor}` }]), 'keyset page');
      add('console.messages.search.p99', 'messages search from:sender42@ -subject:refund', await timed(app, REQUESTS / 4, () => [{ method: 'GET', url: `/api/v1/messages?limit=50&q=${encodeURIComponent('from:sender42@ -subject:refund')}` }]), '1 in 5,000 rows match');
      // The worst case of a substring search: nothing matches, so a whole window is read.
      add('console.messages.search-none.p99', 'messages search matching nothing (one window of 10,000 rows)', await timed(app, 10, () => [{ method: 'GET', url: `/api/v1/messages?limit=50&q=${encodeURIComponent('subject:"no such words"')}` }]), 'an empty page with a cursor to older mail');
      add(
        'console.message.p99',
        'message page (message, its deliveries, each delivery, route test)',
        await timed(app, REQUESTS, () => [
          { method: 'GET', url: `/api/v1/messages/${real}` },
          { method: 'GET', url: `/api/v1/deliveries?message=${real}&limit=500` },
          { method: 'GET', url: `/api/v1/deliveries/${delivery}` },
          { method: 'GET', url: `/api/v1/routes/test?message=${real}` },
        ]),
        'all four calls',
      );
      return out;
    } finally {
      await app.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
