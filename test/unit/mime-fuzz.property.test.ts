import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { testBackend } from '../helpers/env.js';
import fc from 'fast-check';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { validateConfig } from '../../src/config/load.js';
import type { StoredMessage } from '../../src/core/message.js';
import { memoryBlobs } from '../../src/mime/memory-blobs.js';
import { parseStored } from '../../src/mime/parse.js';

/**
 * Mangled real mail never gets past the parser: parseStored settles (parsed, or kept raw with
 * a reason) within a time bound, without the heap growing past a bound. The mutations are
 * those real breakage and attacks produce: a cut message, damaged delimiters, a flood of
 * header lines, deep nesting, NUL bytes. POSTROOM_FUZZ_RUNS sets the number of cases
 * (default 10,000, about half a minute on one core); POSTROOM_FUZZ_SEED and POSTROOM_FUZZ_PATH
 * replay a failure fast-check reported.
 */

const CORPUS = path.resolve(import.meta.dirname, '../fixtures/corpus');
const RUNS = Number(process.env.POSTROOM_FUZZ_RUNS ?? 10_000);
/**
 * Per message, far above what any corpus message needs (a few ms): CPU time, which a loaded CI
 * machine does not stretch (a wall-clock bound failed on a case that, replayed alone, took
 * milliseconds), and a much larger wall-clock bound that catches a parse that never settles.
 */
const TIME_BOUND_MS = 5_000;
const WALL_BOUND_MS = 60_000;
/** Heap growth allowed over the whole run (parsing keeps nothing between messages). */
const HEAP_BOUND = 256 * 1024 * 1024;
const config = validateConfig({}).parse;

/** The heap after a full collection: garbage not yet collected is not growth. */
function heapAfterGc(): number {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  return process.memoryUsage().heapUsed;
}

// Messages up to 64 KiB keep a case cheap; they still cover every structure in the corpus.
const seeds = readdirSync(CORPUS)
  .filter((f) => f !== 'README.md' && statSync(path.join(CORPUS, f)).size <= 64 * 1024)
  .map((f) => readFileSync(path.join(CORPUS, f)));

type Mutation = (b: Buffer) => Buffer;

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  // Truncation anywhere (a dropped connection, a cut attachment).
  fc.double({ min: 0, max: 1, noNaN: true }).map((at) => (b: Buffer) => b.subarray(0, Math.floor(b.length * at))),
  // Boundary damage: a delimiter line loses or gains a dash, or is cut short.
  fc.tuple(fc.nat(), fc.constantFrom('', '-', '---', ' ', '\r', '\n--')).map(([n, repl]) => (b: Buffer) => {
    const s = b.toString('latin1');
    const hits = [...s.matchAll(/\n--/g)].map((m) => m.index);
    if (!hits.length) return b;
    const at = hits[n % hits.length] + 1;
    return Buffer.from(s.slice(0, at) + repl + s.slice(at + 2), 'latin1');
  }),
  // A flood of header lines at the top (a few thousand short fields, or one long folded one).
  fc.tuple(fc.integer({ min: 1, max: 2000 }), fc.boolean()).map(([n, folded]) => (b: Buffer) => {
    const flood = folded ? `X-Flood: a\r\n${' b\r\n'.repeat(n)}` : 'X-F: v\r\n'.repeat(n);
    return Buffer.concat([Buffer.from(flood), b]);
  }),
  // Deep nesting: the message wrapped in levels of multipart/mixed.
  fc.integer({ min: 1, max: 30 }).map((depth) => (b: Buffer) => {
    let out = b;
    for (let i = 0; i < depth; i++) {
      out = Buffer.concat([
        Buffer.from(`Content-Type: multipart/mixed; boundary="n${i}"\r\n\r\n--n${i}\r\n`),
        out,
        Buffer.from(`\r\n--n${i}--\r\n`),
      ]);
    }
    return out;
  }),
  // NUL (and other control) bytes sprinkled through the message.
  fc.array(fc.tuple(fc.nat(), fc.constantFrom(0, 0, 0, 0x0d, 0x1b, 0xff)), { minLength: 1, maxLength: 20 }).map((hits) => (b: Buffer) => {
    const out = Buffer.from(b);
    for (const [at, byte] of hits) if (out.length) out[at % out.length] = byte;
    return out;
  }),
);

function message(raw: Buffer): StoredMessage {
  return {
    id: 'fuzz',
    ingress: 'smtp',
    mailFrom: 'a@example.org',
    rcptTo: ['b@example.org'],
    clientIp: null,
    helo: null,
    authUser: null,
    receivedAt: new Date(0).toISOString(),
    messageId: null,
    subject: null,
    from: null,
    date: null,
    size: raw.length,
    rawSha256: '0'.repeat(64),
    trace: null,
    status: 'received',
    error: null,
    parseStatus: 'pending',
    parseError: null,
  };
}

// Parsing touches no store: the cases run once, on the SQLite pass of the suite, not twice.
test(`mangled corpus messages: parsing settles in time and memory (${RUNS} cases)`, { timeout: 30 * 60_000, skip: testBackend() === 'postgres' && 'parsing touches no store; runs on the sqlite pass' }, async () => {
  assert.ok(seeds.length >= 100, 'the corpus is there');
  const heapAtStart = heapAfterGc();
  let cases = 0;
  let heapPeak = 0;
  // fast-check keeps the failing case's own error as `cause`; its message alone does not say why.
  const withCause = (err: unknown): never => {
    const cause = (err as { cause?: unknown }).cause;
    throw new Error(`${(err as Error).message}\ncause: ${cause instanceof Error ? cause.stack : String(cause)}`);
  };
  await fc.assert(
    fc.asyncProperty(fc.nat(), fc.array(mutation, { minLength: 1, maxLength: 3 }), async (pick, mutations) => {
      const raw = mutations.reduce<Buffer>((b, m) => m(b), seeds[pick % seeds.length]);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`parse did not settle within ${WALL_BOUND_MS} ms`)), WALL_BOUND_MS);
      });
      try {
        const cpu0 = process.cpuUsage();
        const r = await Promise.race([parseStored(message(raw), { blobs: memoryBlobs(raw), config }), timeout]);
        const cpu = process.cpuUsage(cpu0);
        const cpuMs = (cpu.user + cpu.system) / 1000;
        assert.ok(cpuMs < TIME_BOUND_MS, `parse took ${cpuMs.toFixed(0)} ms of CPU`);
        assert.ok(r.save.parseStatus === 'parsed' || r.save.parseStatus === 'raw');
        assert.ok(r.save.parts.length >= 1 || r.save.parseStatus === 'parsed');
      } finally {
        clearTimeout(timer);
      }
      // Cheap check every case, an exact one (after a collection) every 500 or when it looks high.
      const looks = process.memoryUsage().heapUsed - heapAtStart;
      if (++cases % 500 === 0 || looks >= HEAP_BOUND) {
        const grown = heapAfterGc() - heapAtStart;
        heapPeak = Math.max(heapPeak, grown);
        assert.ok(grown < HEAP_BOUND, `heap grew by ${grown} bytes`);
      }
    }),
    {
      numRuns: RUNS,
      ...(process.env.POSTROOM_FUZZ_SEED ? { seed: Number(process.env.POSTROOM_FUZZ_SEED), path: process.env.POSTROOM_FUZZ_PATH } : {}),
    },
  ).catch(withCause);
  console.log(`${cases} cases, heap growth after GC at most ${(heapPeak / 2 ** 20).toFixed(1)} MiB`);
});
