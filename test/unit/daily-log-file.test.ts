import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DailyLogFile } from '../../src/telemetry/daily-file.js';
import { createLogger } from '../../src/telemetry/log.js';
import { tempDir } from '../helpers/env.js';

describe("log files per day, as the fax gateway's smtp_YYMMDD.log", () => {
  it('starts a file at the first line of a new day and removes files older than keepDays', () => {
    const tmp = tempDir();
    try {
      writeFileSync(path.join(tmp.dir, 'smtp_251231.log'), 'old\n');
      writeFileSync(path.join(tmp.dir, 'other.log'), 'not ours\n');
      let now = new Date(2026, 0, 2, 23, 59);
      const f = new DailyLogFile(tmp.dir, 1, () => now);
      f.write('one\n');
      f.write('two\n');
      now = new Date(2026, 0, 3, 0, 1);
      f.write('three\n');
      assert.deepEqual(readdirSync(tmp.dir).sort(), ['other.log', 'smtp_260102.log', 'smtp_260103.log']);
      assert.equal(readFileSync(path.join(tmp.dir, 'smtp_260102.log'), 'utf8'), 'one\ntwo\n');
      assert.equal(readFileSync(path.join(tmp.dir, 'smtp_260103.log'), 'utf8'), 'three\n');
    } finally {
      tmp.cleanup();
    }
  });

  it('gives the file its own level, apart from standard output', () => {
    const tmp = tempDir();
    try {
      const log = createLogger('silent', { file: { dir: tmp.dir, level: 'debug', keepDays: 14 } });
      log.trace('not this');
      log.debug({ session: 's1' }, 'smtp transaction');
      const [name] = readdirSync(tmp.dir);
      assert.match(name, /^smtp_\d{6}\.log$/);
      const lines = readFileSync(path.join(tmp.dir, name), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      assert.deepEqual(lines.map((l) => [l.msg, l.session]), [['smtp transaction', 's1']]);
    } finally {
      tmp.cleanup();
    }
  });
});
