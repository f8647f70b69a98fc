import { mkdtempSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { sql } from 'kysely';
import { startPostroom, type Postroom } from '../../src/app.js';
import { validateConfig } from '../../src/config/load.js';
import { idFloor } from '../../src/core/ids.js';
import { insertMessages, newMessageRow } from '../../src/store/messages.js';
import type { MessagesTable } from '../../src/store/schema.js';
import { searchDoc, searchIndexOf } from '../../src/store/search-index.js';
import { pgSchema, requirePg } from '../lib/pg.js';
import { pct } from '../lib/percentile.js';
import type { BenchContext, Measurement, Scenario } from '../lib/types.js';

// GET /api/v1/messages filters over a store of 1 M messages, on SQLite and on PostgreSQL: p50
// and p99 per filter (server time through fastify inject), the same filters as the store
// answered them before the search index (a substring test on every row, newest first), the
// store's size with and without the index, and on SQLite the SMTP greeting's p99 while a
// search loop runs beside it. Rows are shaped like real mail: 2,000 words, 20,000 senders,
// 500 recipients over a year, a subject of 3–7 words and a short text body of 40 words.

const ROWS = 1_000_000;
const BATCH = 500;
const REQUESTS = 100;
const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';
const WORDS = 2000;
const SENDERS = 20_000;
const RCPTS = 500;

/** A small deterministic PRNG (mulberry32): the same store on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SYLLABLES = ['ka', 're', 'mi', 'to', 'lu', 'sen', 'dor', 'an', 'vel', 'is', 'po', 'ther', 'qua', 'zin', 'mo', 'ber', 'gal', 'fi', 'nu', 'est'];
const vocab: string[] = (() => {
  const r = rng(7);
  const out = new Set<string>();
  while (out.size < WORDS) {
    const n = 2 + Math.floor(r() * 3);
    let w = '';
    for (let i = 0; i < n; i++) w += SYLLABLES[Math.floor(r() * SYLLABLES.length)];
    out.add(w);
  }
  return [...out];
})();

function idAt(ms: number, n: number): string {
  let suffix = '';
  for (let v = n, k = 0; k < 16; k++, v = Math.floor(v / 32)) suffix = CROCKFORD[v % 32] + suffix;
  return idFloor(ms) + suffix;
}

function words(r: () => number, n: number): string {
  // Zipf-like: low word numbers are common, as in real text.
  return Array.from({ length: n }, () => vocab[Math.floor(WORDS * r() ** 2)]).join(' ');
}

const senderOf = (k: number) => `user${k}@mail${k % 300}.example`;

function row(i: number, ms: number, r: () => number): { row: MessagesTable; body: string; to: string } {
  const s = Math.floor(r() * SENDERS);
  const rcpt = `team${i % RCPTS}@postroom.test`;
  const m = newMessageRow(
    idAt(ms, i),
    { mailFrom: senderOf(s), rcptTo: [rcpt], ingress: 'smtp', clientIp: '192.0.2.1', receivedAt: new Date(ms) },
    { sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', size: 2000 + Math.floor(r() * 50_000) },
    { messageId: `<m${i}@mail${s % 300}.example>`, subject: words(r, 3 + Math.floor(r() * 5)), from: `User ${s} <${senderOf(s)}>`, date: null },
    null,
  );
  return { row: { ...m, status: 'delivered', parse_status: 'parsed', parsed_at: m.received_at, dedup_key: null }, body: words(r, 40), to: rcpt };
}

async function fill(app: Postroom, rows: number, log: (s: string) => void): Promise<void> {
  const start = Date.now() - 365 * 86_400_000;
  const step = (365 * 86_400_000 - 3_600_000) / rows;
  const r = rng(42);
  const index = searchIndexOf(app.db.kysely);
  const started = Date.now();
  for (let i = 0; i < rows; ) {
    await app.db.kysely.transaction().execute(async (trx) => {
      for (let b = 0; b < 20 && i < rows; b++) {
        const batch: ReturnType<typeof row>[] = [];
        for (let k = 0; k < BATCH && i < rows; k++, i++) batch.push(row(i, Math.floor(start + i * step), r));
        await insertMessages(trx, batch.map((x) => x.row));
        await index.put(
          trx,
          batch.map((x) =>
            searchDoc({ message: x.row.id, subject: x.row.subject, from: x.row.from_addr, mailFrom: x.row.mail_from, rcptTo: [x.to], addresses: { to: [{ name: '', address: x.to }] }, body: x.body }),
          ),
        );
      }
    });
    if (i % 100_000 === 0) log(`  ${i} rows (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  }
}

async function timed(app: Postroom, n: number, url: (i: number) => string): Promise<{ p50: number; p99: number; items: number }> {
  const inject = app.apiServer!.fastify.inject.bind(app.apiServer!.fastify);
  const times: number[] = [];
  let items = 0;
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const res = await inject({ method: 'GET', url: url(i), headers: { authorization: `Bearer ${app.apiToken}` } });
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (res.statusCode >= 400) throw new Error(`${url(i)}: ${res.statusCode} ${res.body.slice(0, 200)}`);
    items += (JSON.parse(res.body) as { items: unknown[] }).items.length;
  }
  return { p50: pct(times, 50), p99: pct(times, 99), items: items / n };
}

/** The filter as the store answered it before the index: a substring test on every row, newest first. */
async function timedScan(app: Postroom, n: number, col: string, value: (i: number) => string): Promise<{ p50: number; p99: number }> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await sql`select * from messages where lower(coalesce(${sql.ref(col)}, '')) like ${`%${value(i).toLowerCase()}%`} order by id desc limit 51`.execute(app.db.kysely);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { p50: pct(times, 50), p99: pct(times, 99) };
}

/** Milliseconds from connect to the SMTP greeting, n times one after another. */
async function greetings(port: number, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      await new Promise<number>((resolve, reject) => {
        const t0 = process.hrtime.bigint();
        const s = net.connect(port, '127.0.0.1');
        s.once('data', () => {
          resolve(Number(process.hrtime.bigint() - t0) / 1e6);
          s.end('QUIT\r\n');
        });
        s.once('error', reject);
      }),
    );
    await new Promise((r) => setTimeout(r, 5));
  }
  return out;
}

/** Bytes the store holds: SQLite's file (and log), or PostgreSQL's relations, split into what the index adds. */
async function sizes(app: Postroom, dataDir: string): Promise<{ total: number; index: number }> {
  if (app.db.dialect === 'sqlite') {
    await sql`pragma wal_checkpoint(truncate)`.execute(app.db.kysely);
    const file = path.join(dataDir, 'postroom.db');
    const total = statSync(file).size;
    const idx = await sql<{ n: number }>`select coalesce(sum(pgsize), 0) as n from dbstat where name like 'message_search%' or name like 'message_text%' or name like 'sqlite_autoindex_message_text%'`.execute(app.db.kysely);
    return { total, index: Number(idx.rows[0].n) };
  }
  const r = await sql<{ total: string; index: string }>`select (select sum(pg_total_relation_size(c.oid)) from pg_class c where c.relkind = 'r' and c.relnamespace = current_schema()::regnamespace) as total, pg_total_relation_size('message_text') as index`.execute(app.db.kysely);
  return { total: Number(r.rows[0].total), index: Number(r.rows[0].index) };
}

async function runBackend(ctx: BenchContext, backend: 'sqlite' | 'pg', rows: number): Promise<Measurement[]> {
  const dir = mkdtempSync(path.join(ctx.tmpRoot, 'postroom-search-bench-'));
  const schema = backend === 'pg' ? await pgSchema() : undefined;
  const config = validateConfig({
    dataDir: dir,
    log: { level: 'silent' },
    smtp: { listen: '127.0.0.1:0' },
    http: { listen: '127.0.0.1:0', apiToken: 'bench-token-0123456789abcdef' },
    ...(schema ? { store: { database: schema.url } } : {}),
    routes: [{ name: 'team', match: { recipient: 'team{n}@postroom.test' }, deliver: [{ discard: {} }] }],
  });
  const app = await startPostroom(config);
  const name = backend === 'pg' ? 'PostgreSQL' : 'SQLite';
  const out: Measurement[] = [];
  try {
    ctx.log(`message-search ${name}: inserting ${rows} messages with their search documents`);
    const t0 = Date.now();
    await fill(app, rows, ctx.log);
    if (backend === 'pg') await sql`analyze`.execute(app.db.kysely);
    ctx.log(`  filled in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const size = await sizes(app, dir);
    const without = size.total - size.index;
    ctx.log(`  store ${(size.total / 2 ** 20).toFixed(0)} MiB, of which the search index ${(size.index / 2 ** 20).toFixed(0)} MiB (×${(size.total / without).toFixed(2)} the store without it)`);
    out.push({ id: `search.${backend}.size`, label: `${name}: store size with the search index / without`, unit: '×', value: Number((size.total / without).toFixed(2)), target: { op: '<=', value: 2 }, note: `${(size.total / 2 ** 20).toFixed(0)} MiB, index ${(size.index / 2 ** 20).toFixed(0)} MiB`, details: { rows, ...size } });

    const r = rng(99);
    const senders = Array.from({ length: REQUESTS }, () => senderOf(Math.floor(r() * SENDERS)));
    const rare = Array.from({ length: REQUESTS }, () => vocab[WORDS - 1 - Math.floor(r() * 200)]);
    const common = Array.from({ length: REQUESTS }, () => vocab[Math.floor(r() * 20)]);
    const week = new Date(Date.now() - 7 * 86_400_000).toISOString();
    const cases: { key: string; label: string; url: (i: number) => string; scan?: { col: string; value: (i: number) => string } }[] = [
      { key: 'first', label: 'first page, no filter', url: () => '/api/v1/messages?limit=50' },
      { key: 'since', label: 'since= a week ago', url: () => `/api/v1/messages?limit=50&since=${week}` },
      { key: 'from', label: 'from= one sender (1 in 20,000)', url: (i) => `/api/v1/messages?limit=50&from=${senders[i]}`, scan: { col: 'mail_from', value: (i) => senders[i] } },
      { key: 'from-none', label: 'from= matching nothing', url: (i) => `/api/v1/messages?limit=50&from=nobody${i}@nowhere.example`, scan: { col: 'mail_from', value: (i) => `nobody${i}@nowhere.example` } },
      { key: 'subject-rare', label: 'subject= a rare word', url: (i) => `/api/v1/messages?limit=50&subject=${rare[i]}`, scan: { col: 'subject', value: (i) => rare[i] } },
      { key: 'subject-common', label: 'subject= a common word', url: (i) => `/api/v1/messages?limit=50&subject=${common[i]}`, scan: { col: 'subject', value: (i) => common[i] } },
      { key: 'subject-none', label: 'subject= matching nothing', url: (i) => `/api/v1/messages?limit=50&subject=no+such+words+${i}`, scan: { col: 'subject', value: (i) => `no such words ${i}` } },
      { key: 'rcpt', label: 'rcpt= one of 500', url: (i) => `/api/v1/messages?limit=50&rcpt=team${i}@`, scan: { col: 'rcpt_to', value: (i) => `team${i}@` } },
      { key: 'q-text-rare', label: 'q= free text, a rare word (subject, addresses, body)', url: (i) => `/api/v1/messages?limit=50&q=${rare[i]}` },
      { key: 'q-text-common', label: 'q= free text, a common word', url: (i) => `/api/v1/messages?limit=50&q=${common[i]}` },
      { key: 'q-none', label: 'q= free text matching nothing', url: (i) => `/api/v1/messages?limit=50&q=zzqx${i}` },
      { key: 'q-combo', label: 'q=from:<sender> -subject:<common word>', url: (i) => `/api/v1/messages?limit=50&q=${encodeURIComponent(`from:${senders[i]} -subject:${common[i]}`)}` },
    ];
    for (const c of cases) {
      const res = await timed(app, REQUESTS, c.url);
      const scan = c.scan && ctx.wants(`search.${backend}.before`) ? await timedScan(app, ctx.quick ? 10 : 5, c.scan.col, c.scan.value) : undefined;
      const before = scan ? `; before the index: p50 ${scan.p50.toFixed(0)} / p99 ${scan.p99.toFixed(0)} ms` : '';
      ctx.log(`  ${c.label}: p50 ${res.p50.toFixed(1)} ms, p99 ${res.p99.toFixed(1)} ms, ${res.items.toFixed(1)} items/page${before}`);
      out.push({
        id: `search.${backend}.${c.key}.p99`,
        label: `${name}: ${c.label}`,
        unit: 'ms',
        value: Number(res.p99.toFixed(1)),
        target: { op: '<=', value: 50 },
        ...(scan ? { baseline: { name: 'row scan', value: Number(scan.p99.toFixed(0)) } } : {}),
        note: `p50 ${res.p50.toFixed(1)} ms, ${res.items.toFixed(1)} items/page`,
        details: { rows, p50: res.p50, p99: res.p99, requests: REQUESTS, before: scan },
      });
    }

    if (backend === 'sqlite' && app.addresses.smtp) {
      const port = app.addresses.smtp.port;
      const idle = await greetings(port, 200);
      let searching = true;
      const loop = (async () => {
        let i = 0;
        while (searching) await timed(app, 1, () => `/api/v1/messages?limit=50&q=${common[i++ % REQUESTS]}`);
      })();
      const busy = await greetings(port, 200);
      searching = false;
      await loop;
      ctx.log(`  SMTP greeting: idle p50 ${pct(idle, 50).toFixed(1)} / p99 ${pct(idle, 99).toFixed(1)} ms; under a search loop p50 ${pct(busy, 50).toFixed(1)} / p99 ${pct(busy, 99).toFixed(1)} ms`);
      out.push({ id: 'search.sqlite.greeting.p99', label: 'SQLite: SMTP greeting p99 under a search loop', unit: 'ms', value: Number(pct(busy, 99).toFixed(1)), baseline: { name: 'idle', value: Number(pct(idle, 99).toFixed(1)) }, target: { op: '<=', value: Number((2 * pct(idle, 99)).toFixed(1)) }, note: `p50 ${pct(busy, 50).toFixed(1)} ms (idle ${pct(idle, 50).toFixed(1)})` });
    }
    return out;
  } finally {
    await app.stop();
    rmSync(dir, { recursive: true, force: true });
    await schema?.drop();
  }
}

export const messageSearch: Scenario = {
  name: 'message-search',
  description: 'GET /api/v1/messages filters over 1 M messages on SQLite and PostgreSQL: p50/p99 per filter, index size, SMTP greeting under a search loop',
  async run(ctx: BenchContext) {
    const rows = Number(process.env.POSTROOM_BENCH_SEARCH_ROWS) || (ctx.quick ? ROWS / 10 : ROWS);
    const out: Measurement[] = [];
    const backends = (process.env.POSTROOM_BENCH_SEARCH_BACKENDS ?? 'sqlite,pg').split(',');
    if (backends.includes('sqlite') && ctx.wants('search.sqlite')) out.push(...(await runBackend(ctx, 'sqlite', rows)));
    if (backends.includes('pg') && ctx.wants('search.pg')) {
      await requirePg();
      out.push(...(await runBackend(ctx, 'pg', rows)));
    }
    return out;
  },
};
