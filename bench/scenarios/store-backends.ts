import { pgSchema, requirePg } from '../lib/pg.js';
import { procCpuMs } from '../lib/proc.js';
import { startPostroom, type BenchServer } from '../lib/servers.js';
import { runSmtpSource } from '../lib/smtp-source.js';
import { keptMessages } from '../lib/store.js';
import type { BenchContext, Measurement, Scenario } from '../lib/types.js';

// Intake on PostgreSQL beside SQLite: 4 KiB messages over 20 kept-open sessions per
// node, durable (the 250 comes after the commit). On PostgreSQL the raw bytes go into the
// database too (store.blobs: db, the default there), so every node sees every message.

const SIZE = 4096;
const SESSIONS = 20;
const MESSAGES = 5000;

/** smtp-source against every node at once; the rate is all messages over the wall time. */
async function load(nodes: BenchServer[], perNode: number) {
  const cpuBefore = nodes.map((n) => procCpuMs(n.pid));
  const started = process.hrtime.bigint();
  await Promise.all(nodes.map((n) => runSmtpSource({ port: n.port, sessions: SESSIONS, messages: perNode, size: SIZE, keepOpen: true })));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpuMs = nodes.reduce((a, n, i) => a + procCpuMs(n.pid) - cpuBefore[i], 0);
  return { seconds, rate: (perNode * nodes.length) / seconds, cpuMs };
}

async function runCase(ctx: BenchContext, backend: 'sqlite' | 'pg', nodeCount: number): Promise<{ rate: number; m: Measurement }> {
  const perNode = ctx.quick ? MESSAGES / 5 : MESSAGES;
  const total = perNode * nodeCount;
  const id = `store.${backend}${nodeCount > 1 ? nodeCount : ''}.4KiB.s${SESSIONS}.kept`;
  const label = `${backend === 'pg' ? 'PostgreSQL' : 'SQLite'}, ${nodeCount} node${nodeCount > 1 ? 's' : ''} × ${SESSIONS} sessions, 4 KiB`;
  ctx.log(`${label}: ${total} messages`);
  const schema = backend === 'pg' ? await pgSchema() : undefined;
  const yaml = schema ? `store:\n  database: '${schema.url}'` : '';
  const nodes: BenchServer[] = [];
  try {
    nodes.push(...(await Promise.all(Array.from({ length: nodeCount }, () => startPostroom(ctx, yaml)))));
    const r = await load(nodes, perNode);
    const kept = schema ? await schema.kept() : keptMessages(nodes[0].dataDir!);
    if (kept !== total) throw new Error(`${label}: ${total} sent, ${kept} kept`);
    return {
      rate: r.rate,
      m: {
        id,
        label,
        unit: 'msgs/s',
        value: Math.round(r.rate),
        note: `${(r.cpuMs / total).toFixed(2)} ms Postroom CPU/msg`,
        details: { messages: total, nodes: nodeCount, seconds: Number(r.seconds.toFixed(3)), cpuMsPerMessage: Number((r.cpuMs / total).toFixed(3)) },
      },
    };
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await schema?.drop();
  }
}

/** Intake msgs/s: SQLite, PostgreSQL (one node, the SQLite number as baseline), three nodes on one PostgreSQL. */
export const storeBackends: Scenario = {
  name: 'store-backends',
  description: `smtp-source -s ${SESSIONS} -d -l ${SIZE} per node: SQLite, PostgreSQL, 3 nodes on one PostgreSQL`,
  async run(ctx) {
    const ids = ['store.sqlite.4KiB.s20.kept', 'store.pg.4KiB.s20.kept', 'store.pg3.4KiB.s20.kept'];
    if (!ids.some((i) => ctx.wants(i))) return [];
    await requirePg();
    const out: Measurement[] = [];
    const sqlite = await runCase(ctx, 'sqlite', 1);
    if (ctx.wants(ids[0])) out.push(sqlite.m);
    const one = await runCase(ctx, 'pg', 1);
    if (ctx.wants(ids[1])) out.push({ ...one.m, baseline: { name: 'SQLite', value: Math.round(sqlite.rate) } });
    if (ctx.wants(ids[2])) {
      const three = await runCase(ctx, 'pg', 3);
      out.push({ ...three.m, baseline: { name: 'PostgreSQL, 1 node', value: Math.round(one.rate) } });
    }
    return out;
  },
};
