import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startPostroom, type Postroom } from '../../src/app.js';
import { validateConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { createLogger } from '../../src/telemetry/log.js';
import type { DnsLookup } from '../../src/net/dns-cache.js';
import { tempDir, testBackend } from './env.js';

export interface TestPostroom extends Postroom {
  dir: string;
  smtpPort: number;
  httpPort: number;
  baseUrl: string;
  /** fetch against the API with the bearer token. */
  api(pathname: string, init?: RequestInit): Promise<Response>;
  /** Stop and remove the data directory (and the PostgreSQL schema). */
  close(): Promise<void>;
}

/** A PostgreSQL schema of its own for one test Postroom; dropped by the cleanup. */
async function pgSchema(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = process.env.POSTROOM_TEST_DATABASE_URL;
  if (!base) throw new Error('POSTROOM_TEST_BACKEND=postgres needs POSTROOM_TEST_DATABASE_URL');
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: base });
  await client.connect();
  await client.query(`CREATE SCHEMA ${schema}`);
  await client.end();
  const url = new URL(base);
  url.searchParams.set('schema', schema);
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    },
  };
}

/**
 * A whole Postroom in this process on a temporary data directory and free ports, on the
 * backend this run of the suite is for. `overrides` is config as a user would write it.
 */
export async function startTestPostroom(overrides: ConfigInput = {}, opts: { dnsLookup?: DnsLookup } = {}): Promise<TestPostroom> {
  const tmp = tempDir();
  const pgs = testBackend() === 'postgres' ? await pgSchema() : undefined;
  const config = validateConfig({
    dataDir: tmp.dir,
    log: { level: process.env.POSTROOM_TEST_LOG ?? 'silent' },
    ...overrides,
    // Port 0: the kernel picks and the listener reports it. A port found free beforehand may be
    // taken by the time we bind (two picks can even coincide), which fails the test at start.
    smtp: { listen: '127.0.0.1:0', hostname: 'mx.postroom.test', ...(overrides.smtp ?? {}) },
    http: { listen: '127.0.0.1:0', apiToken: 'test-token-0123456789abcdef', ...(overrides.http ?? {}) },
    store: { ...(pgs ? { database: pgs.url } : {}), ...(overrides.store ?? {}) },
  });
  const log = createLogger(config.log.level, { file: config.log.file });
  const app = await startPostroom(config, { log, dnsLookup: opts.dnsLookup });
  const smtpPort = app.addresses.smtp?.port ?? 0;
  const httpPort = app.addresses.http?.port ?? 0;
  // A test that stops this Postroom and starts another on `pr.config` gets the same ports.
  if (smtpPort) config.smtp.listen.port = smtpPort;
  if (httpPort) config.http.listen.port = httpPort;
  const baseUrl = `http://127.0.0.1:${httpPort}`;
  return Object.assign(app, {
    dir: tmp.dir,
    smtpPort,
    httpPort,
    baseUrl,
    api(pathname: string, init: RequestInit = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has('authorization')) headers.set('authorization', `Bearer ${app.apiToken}`);
      return fetch(baseUrl + pathname, { ...init, headers });
    },
    async close() {
      await app.stop();
      await pgs?.drop();
      tmp.cleanup();
    },
  });
}
