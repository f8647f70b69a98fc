import http from 'node:http';
import type { AddressInfo } from 'node:net';
import nodemailer from 'nodemailer';
import { startPostroom } from '../lib/servers.js';
import type { Measurement, Scenario } from '../lib/types.js';

/**
 * Issue 3: latency from the SMTP 250 to the webhook request arriving, at a steady 100 msgs/s.
 * A local HTTP receiver answers 200 and notes when each message (by its Subject) arrives; the
 * client sends on four kept-open SMTP connections on a fixed schedule (not as fast as it can:
 * this is latency at a given load, not throughput) and notes each 250.
 */

const RATE = 100;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

export const webhookLatency: Scenario = {
  name: 'webhook-latency',
  description: `250 → webhook request latency at a steady ${RATE} msgs/s (p50, p99)`,
  async run(ctx) {
    if (!ctx.wants('webhook.latency.p99') && !ctx.wants('webhook.latency.p50')) return [];
    const total = ctx.quick ? 300 : 2000;
    const arrived = new Map<string, number>();
    const receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const at = performance.now();
        const subject = /"subject":"(lat-\d+)"/.exec(Buffer.concat(chunks).toString('utf8'))?.[1];
        if (subject && !arrived.has(subject)) arrived.set(subject, at);
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const pr = await startPostroom(
      ctx,
      ['routes:', '  - name: all', "    match: { recipient: '*' }", '    deliver:', `      - webhook: { url: '${hook}', allowPrivate: true }`].join('\n'),
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
      ctx.log(`webhook latency: ${total} messages at ${RATE}/s`);
      const acked = new Map<string, number>();
      const sends: Promise<unknown>[] = [];
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
      const lat = [...acked].filter(([s]) => arrived.has(s)).map(([s, t]) => arrived.get(s)! - t);
      const missing = total - lat.length;
      const details = { messages: total, rate: RATE, arrived: arrived.size, missing, minMs: Math.min(...lat), maxMs: Math.max(...lat) };
      const note = missing ? `${missing} not delivered within 60 s` : `${total} at ${RATE}/s`;
      return [
        { id: 'webhook.latency.p50', label: `250 → webhook, p50 at ${RATE}/s`, unit: 'ms', value: Math.round(pct(lat, 50)), note, details },
        {
          id: 'webhook.latency.p99',
          label: `250 → webhook, p99 at ${RATE}/s`,
          unit: 'ms',
          value: Math.round(pct(lat, 99)),
          target: { op: '<=', value: 50 },
          note,
          details,
        },
      ] satisfies Measurement[];
    } finally {
      transport.close();
      await pr.stop();
      await new Promise((r) => receiver.close(r));
    }
  },
};
