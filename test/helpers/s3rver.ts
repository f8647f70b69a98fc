import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, portAnswers, tempDir, waitFor } from './env.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(root, 'node_modules/s3rver/bin/s3rver.js');

/** s3rver's fixed account: it checks signatures against these. */
export const S3RVER_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

/** An S3 protocol server (s3rver) in a child process, with one bucket. */
export interface S3rver {
  endpoint: string;
  port: number;
  bucket: string;
  dir: string;
  child: ChildProcess;
  /** `store.s3` for a Postroom config pointing at it. */
  storeConfig(prefix?: string): { endpoint: string; bucket: string; region: string; prefix: string; forcePathStyle: true };
  /** Kill it (SIGKILL: an S3 endpoint that vanishes mid-request). */
  kill(): Promise<void>;
  /** Start it again on the same port and data directory. */
  restart(): Promise<void>;
  /** Stop it and remove its data. */
  stop(): Promise<void>;
}

/**
 * For a suite that needs s3rver: `describe(name, { skip: s3rverSkip(name) }, …)`. A one-line
 * skip reason when the dev dependency is missing; under CI=true the file fails on it.
 */
export function s3rverSkip(suite: string): string | false {
  if (existsSync(BIN)) return false;
  if (process.env.CI === 'true') throw new Error(`s3rver (dev dependency) is missing under CI: npm ci installs it (suite "${suite}")`);
  return 's3rver not installed (npm ci installs the dev dependencies)';
}

/**
 * Start s3rver on a free port in a temp dir, with `bucket` created; it runs in a child process
 * so that a test can kill it mid-upload and so its memory is not counted as Postroom's.
 */
export async function startS3rver(bucket = 'postroom-test'): Promise<S3rver> {
  const tmp = tempDir('postroom-s3rver-');
  const port = await freePort();
  let child!: ChildProcess;
  const launch = async () => {
    child = spawn(process.execPath, [BIN, '-d', tmp.dir, '-a', '127.0.0.1', '-p', String(port), '-s', '--configure-bucket', bucket], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    let exited = false;
    child.once('exit', () => (exited = true));
    await waitFor(
      async () => {
        if (exited) throw new Error(`s3rver exited before it listened:\n${err}`);
        return portAnswers(port);
      },
      's3rver to listen',
      30_000,
    );
  };
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  };
  await launch();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    port,
    bucket,
    dir: tmp.dir,
    get child() {
      return child;
    },
    storeConfig: (prefix = 'postroom') => ({ endpoint, bucket, region: 'us-east-1', prefix, forcePathStyle: true as const }),
    kill,
    restart: launch,
    async stop() {
      await kill();
      tmp.cleanup();
    },
  };
}

/** Set s3rver's credentials in this process's environment (the SDK's default chain reads them). */
export function useS3rverCredentials(): void {
  Object.assign(process.env, S3RVER_CREDENTIALS);
}
