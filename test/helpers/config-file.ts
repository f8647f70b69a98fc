import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { stringify } from 'yaml';
import { startPostroom, type Postroom } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { tempDir, testBackend } from './env.js';
import { pgTestSchema } from './test-db.js';

/** A Postroom started from a config file (as `serve --config` is), so that a reload reads that file. */
export interface FilePostroom {
  pr: Postroom;
  dir: string;
  file: string;
  /** Write the file anew (dataDir, listeners and token are added as at start). */
  write(config: Record<string, unknown>): void;
  /** Every log line so far, parsed. */
  logs(): Record<string, any>[];
  smtpPort: number;
  api(pathname: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

const TOKEN = 'test-token-0123456789abcdef';

/** Start a Postroom on the backend of this run from a YAML file of `config` (plus temp dirs and port 0 listeners). */
export async function startFromFile(config: Record<string, unknown>): Promise<FilePostroom> {
  const tmp = tempDir();
  const pgs = testBackend() === 'postgres' ? await pgTestSchema() : undefined;
  const file = path.join(tmp.dir, 'postroom.yaml');
  const env: NodeJS.ProcessEnv = pgs ? { POSTROOM_DATABASE_URL: pgs.url } : {};
  const write = (c: Record<string, unknown>) => {
    const smtp = (c.smtp ?? {}) as Record<string, unknown>;
    const http = (c.http ?? {}) as Record<string, unknown>;
    const full = {
      ...c,
      dataDir: path.join(tmp.dir, 'data'),
      log: { level: 'info' },
      smtp: { listen: '127.0.0.1:0', hostname: 'mx.postroom.test', ...smtp },
      http: { listen: '127.0.0.1:0', apiToken: TOKEN, ...http },
    };
    writeFileSync(file, stringify(full));
  };
  write(config);
  const lines: Record<string, any>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, any>);
      cb();
    },
  });
  const log = pino({ level: 'info' }, sink);
  const pr = await startPostroom(loadConfig(file, env), { log, origin: { file, env } });
  const baseUrl = `http://127.0.0.1:${pr.addresses.http?.port ?? 0}`;
  return {
    pr,
    dir: tmp.dir,
    file,
    write,
    logs: () => lines,
    smtpPort: pr.addresses.smtp?.port ?? 0,
    api(pathname, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has('authorization')) headers.set('authorization', `Bearer ${TOKEN}`);
      return fetch(baseUrl + pathname, { ...init, headers });
    },
    async close() {
      await pr.stop();
      await pgs?.drop();
      tmp.cleanup();
    },
  };
}
