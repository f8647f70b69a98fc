import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { BIN } from '../helpers/deliver.js';
import { tempDir } from '../helpers/env.js';
import { cleanEnv } from '../helpers/serve-child.js';

const HEAD = 'From: ann@example.org\r\nTo: box@pipe.test\r\nSubject: faults\r\nMessage-ID: <fault@example.org>\r\n\r\n';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `postroom deliver` (the built binary) as an MTA's pipe runs it. `holdInput`: send the header
 * block only and keep stdin open, so a fault injected while the message streams lands before it
 * is kept. `inject`: a module loaded with --import, standing in for a defect nobody foresaw.
 */
function deliver(
  args: string[],
  o: { inject?: string; holdInput?: boolean; closeStdout?: boolean } = {},
): Promise<Run> {
  const child = spawn(process.execPath, [BIN, 'deliver', ...args], {
    env: cleanEnv(o.inject ? { NODE_OPTIONS: `--import=${o.inject}` } : {}),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  if (o.closeStdout) child.stdout.destroy();
  else child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.on('error', () => {});
  if (o.holdInput) child.stdin.write(HEAD);
  else child.stdin.end(`${HEAD}body\r\n`);
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

function keptCount(dataDir: string): number {
  const file = path.join(dataDir, 'postroom.db');
  if (!existsSync(file)) return 0;
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('select count(*) as n from messages').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

// Postfix pipe(8) and Exim bounce on any exit status that is not 0 or EX_TEMPFAIL-like; Node
// exits 1 on an uncaught exception. Each case below exited 1 (or hung) before the pipe guard.
describe('postroom deliver under faults: 75 with 4.x.x unless kept, then 0 (the real binary)', { concurrency: 2, timeout: 120_000 }, () => {
  const tmp = tempDir('pipe-faults-');
  after(() => tmp.cleanup());
  const config = (name: string, dataDir: string) => {
    const file = path.join(tmp.dir, `${name}.yaml`);
    writeFileSync(file, JSON.stringify({ dataDir, http: { enabled: false }, smtp: { domains: ['pipe.test'] } }));
    return file;
  };
  const inject = (name: string, code: string) => {
    const file = path.join(tmp.dir, `${name}.mjs`);
    writeFileSync(file, code);
    return file;
  };

  it('a dataDir that cannot be created (under /proc) fails at once with 75 and 4.3.5 naming it, instead of spinning', { timeout: 30_000 }, async () => {
    // Node's mkdir({ recursive: true }) loops for ever on /proc's ENOENT: the run spun at 100 % CPU until the MTA's limit.
    const r = await deliver(['--config', config('proc', '/proc/postroom-no-such/data'), '--recipient', 'box@pipe.test']);
    assert.equal(r.code, 75, r.stderr);
    assert.match(r.stderr, /^4\.3\.5 Cannot create directory \/proc\/postroom-no-such\/data \(\/proc\/postroom-no-such: ENOENT/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });

  for (const [what, code, line] of [
    ['an uncaught exception', "setTimeout(() => { throw new Error('injected fault'); }, 1500);\n", /^4\.3\.0 Internal error: injected fault$/m],
    ['an unhandled rejection', "setTimeout(() => { void Promise.reject(new Error('injected rejection')); }, 1500);\n", /^4\.3\.0 Internal error: injected rejection$/m],
  ] as const) {
    it(`${what} while the message streams exits 75 with a 4.3.0 line, and nothing is kept`, async () => {
      const name = what.replace(/\W+/g, '-');
      const dataDir = path.join(tmp.dir, name);
      const r = await deliver(['--config', config(name, dataDir), '--recipient', 'box@pipe.test'], { holdInput: true, inject: inject(name, code) });
      assert.equal(r.code, 75, r.stderr);
      assert.match(r.stderr, line);
      assert.equal(keptCount(dataDir), 0);
    });
  }

  it('a stdout the MTA closed (EPIPE on the success line) after the message was kept exits 0, kept once', async () => {
    const dataDir = path.join(tmp.dir, 'epipe');
    const r = await deliver(['--config', config('epipe', dataDir), '--recipient', 'box@pipe.test'], { closeStdout: true });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(keptCount(dataDir), 1);
  });

  it('a failure after the message was kept (writing the success line throws) exits 0, kept once', async () => {
    const dataDir = path.join(tmp.dir, 'after-keep');
    const r = await deliver(['--config', config('after-keep', dataDir), '--recipient', 'box@pipe.test'], {
      inject: inject('stdout', "process.stdout.write = () => { throw new Error('injected write failure'); };\n"),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(keptCount(dataDir), 1);
  });
});
