import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { portAnswers as answers, skipWithout, waitFor } from '../helpers/env.js';
import { startPostfix, sweepStalePostfix } from '../helpers/postfix.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MAIN_CF = '/etc/postfix/main.cf';
const PIPE = 'postroom unix - n n - - pipe\n  flags=R user=nobody argv=/bin/true';
/** Entries of throw-away instances (test/helpers/postfix.ts), ours or another run's. */
const instanceEntry = (d: string) => d.startsWith(path.join(os.tmpdir(), 'postfix-')) && d.endsWith('/etc');

/**
 * main.cf as an observer comparing before and after sees it, with other runs' instances (this
 * machine is shared: another checkout's test may be adding or dropping its own entry meanwhile)
 * taken out of alternate_config_directories. The line itself stays, empty or not, unless only
 * their entries were in it: so a left-behind empty `alternate_config_directories =` shows.
 */
function mainCf(): string {
  return readFileSync(MAIN_CF, 'utf8').replace(/^alternate_config_directories\s*=(.*)\n/m, (line, value: string) => {
    const all = value.split(/[\s,]+/).filter(Boolean);
    const kept = all.filter((d) => !instanceEntry(d));
    if (kept.length === 0 && all.length > 0) return '';
    return kept.length === all.length ? line : `alternate_config_directories = ${kept.join(' ')}\n`;
  });
}
const listed = (etc: string) => readFileSync(MAIN_CF, 'utf8').split('\n').some((l) => /^alternate_config_directories\s*=/.test(l) && l.split(/[\s,=]+/).includes(etc));

/** A child process with a Postfix of its own (test/helpers/postfix-child.ts), once it is up. */
async function child(how: 'wait' | 'throw') {
  const c = spawn(process.execPath, ['--import', 'tsx', path.join(here, '../helpers/postfix-child.ts'), how], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  c.stdout.on('data', (b: Buffer) => (out += b.toString()));
  c.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | string | null>((resolve) => c.on('exit', (code, sig) => resolve(sig ?? code)));
  const [, etc, port] = (await waitFor(() => /^READY (\S+) (\d+)$/m.exec(out), `the child's Postfix (stderr: ${err})`, 30_000)) as RegExpExecArray;
  return { c, etc: etc!, port: Number(port), exited, stderr: () => err };
}

describe("the Postfix test helper leaves the machine's main.cf as it found it", { skip: skipWithout("the Postfix test helper leaves the machine's main.cf as it found it", 'postfix') }, () => {
  it('start and stop: the entry is there while it runs, and main.cf is byte for byte as before after', async () => {
    const before = mainCf();
    const pf = await startPostfix({ pipeDomain: 'pipe.test', relayDomain: 'relay.test', relayPort: 9, pipeEntry: PIPE });
    const etc = path.join(pf.dir, 'etc');
    assert.ok(listed(etc), 'the instance is listed in alternate_config_directories while it runs');
    await pf.stop();
    assert.equal(listed(etc), false);
    assert.equal(mainCf(), before);
    assert.equal(existsSync(pf.dir), false);
  });

  for (const [how, kill] of [
    ['SIGTERM', 'SIGTERM'],
    ['SIGINT (Ctrl-C)', 'SIGINT'],
    ['an uncaught error (a failing run that never calls stop)', undefined],
  ] as const) {
    it(`a run ended by ${how} takes its entry, daemon and directory with it`, async () => {
      const before = mainCf();
      const run = await child(kill ? 'wait' : 'throw');
      if (kill) {
        assert.ok(listed(run.etc));
        run.c.kill(kill);
      }
      const ended = await run.exited;
      if (kill) assert.equal(ended, kill, run.stderr());
      else assert.equal(ended, 1, run.stderr());
      assert.equal(listed(run.etc), false, `still listed; child's stderr: ${run.stderr()}`);
      assert.equal(await answers(run.port), false, 'its Postfix was stopped');
      assert.equal(existsSync(path.dirname(run.etc)), false);
      assert.equal(mainCf(), before);
    });
  }

  it('a run killed outright (SIGKILL, no handler runs) is swept at the next start: entry, daemon and directory', async () => {
    const before = mainCf();
    const run = await child('wait');
    run.c.kill('SIGKILL');
    await run.exited;
    // Nothing could clean up: the entry and the daemon are still there.
    assert.ok(listed(run.etc));
    assert.equal(await answers(run.port), true);
    sweepStalePostfix();
    assert.equal(listed(run.etc), false);
    await waitFor(async () => !(await answers(run.port)), 'the orphaned Postfix to stop', 20_000);
    assert.equal(existsSync(path.dirname(run.etc)), false);
    assert.equal(mainCf(), before);
  });
});
