import http from 'node:http';
import type { AddressInfo } from 'node:net';
import nodemailer from 'nodemailer';
import { pgSchema, requirePg } from '../lib/pg.js';
import { procCpuMs } from '../lib/proc.js';
import { pct } from '../lib/percentile.js';
import { startPostroom } from '../lib/servers.js';
import type { BenchContext, Measurement, Scenario } from '../lib/types.js';

/**
 * Latency from the SMTP 250 to the webhook request arriving, at a steady 100 msgs/s,
 * on SQLite and on PostgreSQL. A local HTTP receiver answers 200 and notes when each message
 * (by its Subject) arrives; the client sends on four kept-open SMTP connections on a fixed
 * schedule (not as fast as it can: this is latency at a given load, not throughput) and notes
 * each 250. The first WARMUP messages (two seconds at the same rate) are sent but not counted:
 * they meet a cold process (code not yet compiled, caches empty), which is not the steady state
 * the target is about; their p99 is in the details.
 */

const RATE = 100;
const WARMUP = 200;

const CASES = [
  { backend: 'sqlite', prefix: 'webhook.latency', name: 'SQLite' },
  { backend: 'pg', prefix: 'webhook.pg.latency', name: 'PostgreSQL' },
] as const;

async function runCase(ctx: BenchContext, c: (typeof CASES)[number]): Promise<Measurement[]> {
  const counted = ctx.quick ? 300 : 2000;
  const total = WARMUP + counted;
  const arrived = new Map<string, number>();
  const receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const at = performance.now();
      const subject = /"subject":"(lat-\d+)"/.exec(Buffer.concat(chunks).toString('utf8'))?.[1];
      if (subject && !arrived.has(subject)) arrived.set(subject, at);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  const schema = c.backend === 'pg' ? await pgSchema() : undefined;
  const pr = await startPostroom(
    ctx,
    [
      ...(schema ? ['store:', `  database: '${schema.url}'`] : []),
      'routes:',
      '  - name: all',
      "    match: { recipient: '*' }",
      '    deliver:',
      `      - webhook: { url: '${hook}', allowPrivate: true }`,
    ].join('\n'),
  );
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: pr.port,
    secure: false,
    ignoreTLS: true,
    pool: true,
    maxConnections: 4,
    maxMessages: Infinity,
  });
  try {
    ctx.log(`webhook latency, ${c.name}: ${WARMUP} + ${counted} messages at ${RATE}/s`);
    const acked = new Map<string, number>();
    const sends: Promise<unknown>[] = [];
    const cpuBefore = procCpuMs(pr.pid);
    const start = performance.now();
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const subject = `lat-${i}`;
      sends.push(
        transport
          .sendMail({ from: 'bench@example.org', to: 'hook@example.org', subject, text: `message ${i}\n` })
          .then(() => acked.set(subject, performance.now())),
      );
    }
    await Promise.all(sends);
    const deadline = performance.now() + 60_000;
    while (arrived.size < total && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const cpuMs = procCpuMs(pr.pid) - cpuBefore;
    const latency = (warm: boolean) =>
      [...acked].filter(([s]) => arrived.has(s) && Number(s.slice(4)) < WARMUP === warm).map(([s, t]) => arrived.get(s)! - t);
    const lat = latency(false);
    const warm = latency(true);
    const missing = total - lat.length - warm.length;
    const details = {
      messages: counted,
      warmup: WARMUP,
      warmupP99Ms: Math.round(pct(warm, 99)),
      rate: RATE,
      arrived: arrived.size,
      missing,
      p90Ms: Math.round(pct(lat, 90)),
      minMs: Math.round(Math.min(...lat)),
      maxMs: Math.round(Math.max(...lat)),
      cpuMsPerMessage: Number((cpuMs / total).toFixed(3)),
    };
    const note = `${missing ? `${missing} not delivered within 60 s` : `${counted} at ${RATE}/s after ${WARMUP}`}, ${details.cpuMsPerMessage.toFixed(2)} ms Postroom CPU/msg`;
    return [
      { id: `${c.prefix}.p50`, label: `${c.name}: 250 → webhook, p50 at ${RATE}/s`, unit: 'ms', value: Math.round(pct(lat, 50)), note, details },
      {
        id: `${c.prefix}.p99`,
        label: `${c.name}: 250 → webhook, p99 at ${RATE}/s`,
        unit: 'ms',
        value: Math.round(pct(lat, 99)),
        target: { op: '<=', value: 50 },
        note,
        details,
      },
    ];
  } finally {
    transport.close();
    await pr.stop();
    await new Promise((r) => receiver.close(r));
    await schema?.drop();
  }
}

export const webhookLatency: Scenario = {
  name: 'webhook-latency',
  description: `250 → webhook request latency at a steady ${RATE} msgs/s (p50, p99), SQLite and PostgreSQL`,
  async run(ctx) {
    const out: Measurement[] = [];
    for (const c of CASES) {
      if (!ctx.wants(`${c.prefix}.p50`) && !ctx.wants(`${c.prefix}.p99`)) continue;
      if (c.backend === 'pg') await requirePg();
      out.push(...(await runCase(ctx, c)));
    }
    return out;
  },
};
