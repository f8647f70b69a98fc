import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { cleanEnv, startServeChild, type ServeChild } from '../helpers/serve-child.js';
import { tempDir, testBackend, waitFor } from '../helpers/env.js';
import { pgTestSchema } from '../helpers/test-db.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TOKEN = 'cli-reload-token-0123456789';

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [path.join(root, 'bin/postroom.js'), ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

describe('postroom reload and SIGHUP on a running postroom serve', () => {
  const tmp = tempDir();
  let serve: ServeChild | undefined;
  let drop: (() => Promise<void>) | undefined;
  after(async () => {
    serve?.child.kill('SIGKILL');
    await serve?.exited;
    await drop?.();
    tmp.cleanup();
  });

  it('reload applies the file, refuses an invalid one with its key path, and SIGHUP does the same', async () => {
    const env: Record<string, string> = {};
    if (testBackend() === 'postgres') {
      const pgs = await pgTestSchema();
      drop = pgs.drop;
      env.POSTROOM_DATABASE_URL = pgs.url;
    }
    const file = path.join(tmp.dir, 'postroom.yaml');
    const write = (routes: unknown[]) =>
      writeFileSync(
        file,
        stringify({
          dataDir: path.join(tmp.dir, 'data'),
          smtp: { listen: '127.0.0.1:0' },
          http: { listen: '127.0.0.1:0', apiToken: TOKEN },
          routes,
        }),
      );
    const route = (name: string) => ({ name, match: { recipient: `${name}@postroom.test` }, deliver: [{ discard: null }] });
    write([route('first')]);
    serve = await startServeChild(['--config', file], env, tmp.dir);
    const url = /HTTP {2}(http:\/\/[^/]+)\//.exec(serve.stderr())![1]!;
    const names = async () => {
      const res = await fetch(`${url}/api/v1/routes`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return ((await res.json()) as { items: { name: string }[] }).items.map((r) => r.name);
    };
    assert.deepEqual(await names(), ['first']);

    write([route('second')]);
    const ok = await run(['reload', '--config', file, '--url', url], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^reloaded: config generation 2 \(\w+\)\n {2}applied to new sessions: routes\n$/);
    assert.deepEqual(await names(), ['second']);

    writeFileSync(file, stringify({ dataDir: path.join(tmp.dir, 'data'), http: { listen: '127.0.0.1:0', apiToken: TOKEN }, routes: [{ name: 'x', deliver: [{ nosuchkind: {} }] }] }));
    const bad = await run(['reload', '--config', file, '--url', url], env);
    assert.equal(bad.code, 78);
    assert.match(bad.stderr, /routes\[0\]\.deliver\[0\]/);
    assert.deepEqual(await names(), ['second']);

    write([route('third')]);
    serve.child.kill('SIGHUP');
    await waitFor(async () => (await names()).includes('third') || undefined, 'SIGHUP to reload the routes', 20_000);
    // The server lives on after SIGHUP (its default action would have ended it).
    assert.equal(serve.child.exitCode, null);

    const nothing = await run(['reload', '--config', file, '--url', url], env);
    assert.equal(nothing.code, 0, nothing.stderr);
    assert.match(nothing.stdout, /^nothing to apply: config generation 3/);
  });
});
