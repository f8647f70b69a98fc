import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { MailError } from '../../src/core/errors.js';
import { makeDirs, makeDirsSync } from '../../src/core/make-dirs.js';
import { tempDir } from '../helpers/env.js';

describe('makeDirs: mkdir -p that fails instead of spinning', { timeout: 30_000 }, () => {
  const tmp = tempDir('make-dirs-');
  after(() => tmp.cleanup());

  it('creates every missing level, and is content with what exists', async () => {
    const deep = path.join(tmp.dir, 'a', 'b', 'c');
    await makeDirs(deep);
    await makeDirs(deep);
    makeDirsSync(path.join(deep, 'd'));
    assert.ok(statSync(path.join(deep, 'd')).isDirectory());
  });

  for (const [name, make] of [
    ['async', makeDirs],
    ['sync', async (d: string) => makeDirsSync(d)],
  ] as const) {
    it(`${name}: under /proc (Node's recursive mkdir loops for ever there) is 4.3.5 naming the directory`, async () => {
      await assert.rejects(make('/proc/postroom-no-such/data'), (e: unknown) => {
        assert.ok(e instanceof MailError);
        assert.equal(e.status, '4.3.5');
        assert.match(e.message, /^Cannot create directory \/proc\/postroom-no-such\/data \(\/proc\/postroom-no-such: ENOENT/);
        return true;
      });
    });

    it(`${name}: a file in the way is 4.3.5 naming it`, async () => {
      const file = path.join(tmp.dir, `file-${name}`);
      writeFileSync(file, '');
      await assert.rejects(make(path.join(file, 'x')), /Cannot create directory .*file-\w+\/x \(.*file-\w+: exists and is not a directory\)/);
    });
  }
});
