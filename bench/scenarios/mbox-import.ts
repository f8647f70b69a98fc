import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { procMemory } from '../lib/proc.js';
import { keptMessages } from '../lib/store.js';
import type { Scenario } from '../lib/types.js';

const MiB = 1024 * 1024;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** An mboxrd of `bytes` bytes: 8 KiB messages shaped like mail, a quoted From line in each, every fiftieth 256 KiB. */
async function writeMbox(file: string, bytes: number): Promise<number> {
  const out = createWriteStream(file, { highWaterMark: 4 * MiB });
  const line = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor inc\n';
  let written = 0;
  let n = 0;
  while (written < bytes) {
    const size = n % 50 === 49 ? 256 * 1024 : 8 * 1024;
    const head =
      `From sender${n % 997}@example.org Mon Dec  7 17:14:15 2026\n` +
      `Return-Path: <sender${n % 997}@example.org>\nX-Original-To: rcpt${n % 89}@example.net\n` +
      `Message-ID: <bench-${n}@example.org>\nFrom: Sender <sender${n % 997}@example.org>\nTo: rcpt${n % 89}@example.net\n` +
      `Subject: bench message ${n}\nDate: Mon, 07 Dec 2026 17:14:15 +0000\n\n>From the body, quoted\n`;
    const body = line.repeat(Math.max(1, Math.floor((size - head.length) / line.length)));
    const chunk = `${head}${body}\n`;
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
    written += chunk.length;
    n++;
  }
  await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
  return n;
}

/** Run `postroom import mbox --no-route FILE` into a fresh store; its exit code, output and peak RSS (VmHWM, sampled until it exits). */
async function importOnce(file: string, dataDir: string, dir: string): Promise<{ code: number | null; out: string; peak: number }> {
  const config = path.join(dir, `postroom-${path.basename(dataDir)}.yaml`);
  writeFileSync(config, `dataDir: ${JSON.stringify(dataDir)}\n`);
  const child = spawn(process.execPath, [path.join(root, 'bin/postroom.js'), 'import', 'mbox', '--no-route', '--config', config, file], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('POSTROOM_'))),
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  let peak = 0;
  const sample = () => {
    try {
      peak = Math.max(peak, procMemory(child.pid!, 'VmHWM'));
    } catch {
      // exited between two samples: the last reading stands (VmHWM only grows)
    }
  };
  const timer = setInterval(sample, 20);
  const code = await new Promise<number | null>((r) => child.on('close', r));
  clearInterval(timer);
  return { code, out, peak };
}

/**
 * `postroom import mbox` of a 1 GiB mbox (200 MiB with --quick) into a fresh SQLite store:
 * messages and MiB per second, and the importing process's peak RSS (VmHWM, the kernel's
 * high-water mark, read until it exits): it must stay bounded, whatever the file's size.
 */
export const mboxImport: Scenario = {
  name: 'mbox-import',
  description: 'postroom import mbox of a 1 GiB mbox: messages/s, MiB/s and peak RSS',
  async run(ctx) {
    if (!ctx.wants('import.mbox.rate') && !ctx.wants('import.mbox.rss')) return [];
    const dir = mkdtempSync(path.join(ctx.tmpRoot, 'postroom-bench-import-'));
    try {
      const size = ctx.quick ? 200 * MiB : 1024 * MiB;
      const file = path.join(dir, 'bench.mbox');
      ctx.log(`writing a ${size / MiB} MiB mbox`);
      const count = await writeMbox(file, size);
      const bytes = statSync(file).size;
      const dataDir = path.join(dir, 'data');
      // The same command on a one-message mbox: what the process takes before any volume.
      const tiny = path.join(dir, 'one.mbox');
      writeFileSync(tiny, 'From a@example.org Mon Dec  7 17:14:15 2026\nX-Original-To: r@example.net\nSubject: one\n\nhi\n');
      const one = await importOnce(tiny, path.join(dir, 'one-data'), dir);
      ctx.log(`importing ${count} messages`);
      const started = Date.now();
      const { code, out, peak } = await importOnce(file, dataDir, dir);
      const seconds = (Date.now() - started) / 1000;
      if (code !== 0) throw new Error(`postroom import exited ${code}: ${out}`);
      const kept = keptMessages(dataDir);
      if (kept !== count) throw new Error(`the store holds ${kept} messages, not ${count}`);
      const mibps = bytes / MiB / seconds;
      const details = { messages: count, MiB: Math.round(bytes / MiB), seconds: Number(seconds.toFixed(1)), msgPerSecond: Math.round(count / seconds), MiBps: Number(mibps.toFixed(1)), peakRssMiB: Math.round(peak / MiB) };
      return [
        {
          id: 'import.mbox.rate',
          label: `import mbox ${Math.round(bytes / MiB)} MiB: messages per second`,
          unit: 'msgs/s',
          value: Math.round(count / seconds),
          note: `${mibps.toFixed(1)} MiB/s, ${count} messages in ${seconds.toFixed(1)} s`,
          details,
        },
        {
          id: 'import.mbox.rss',
          label: `import mbox ${Math.round(bytes / MiB)} MiB: peak RSS`,
          unit: 'MiB',
          value: Math.round(peak / MiB),
          baseline: { name: 'one message', value: Math.round(one.peak / MiB) },
          target: { op: '<=', value: 256 },
          note: 'VmHWM of the import process; baseline: the same command importing one message',
          details,
        },
      ];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
