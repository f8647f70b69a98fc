import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN } from '../helpers/deliver.js';
import { freePort, skipWithout, tempDir, waitFor } from '../helpers/env.js';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { swaks } from '../helpers/swaks.js';

/**
 * A real Postfix whose pipe transport runs `postroom deliver` when something goes wrong that
 * nobody foresaw. pipe(8) bounces on exit 1 (what Node exits with on an uncaught exception):
 * the mail must instead stay deferred in Postfix's queue, with an RFC 3463 code in the log.
 */
const SUITE = 'Postfix pipe → postroom deliver, failing unexpectedly: the mail stays deferred, never bounces';
describe(SUITE, { timeout: 180_000, skip: skipWithout(SUITE, 'postfix', 'swaks') }, () => {
  let postfix: PostfixInstance | undefined;
  const tmp = tempDir('postfix-pipe-faults-');

  before(async () => {
    const nobody = {
      uid: Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim()),
      gid: Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim()),
    };
    chmodSync(tmp.dir, 0o755);
    const dataDir = path.join(tmp.dir, 'data');
    mkdirSync(dataDir, { mode: 0o700 });
    chownSync(dataDir, nobody.uid, nobody.gid);
    const write = (name: string, text: string) => {
      const f = path.join(tmp.dir, name);
      writeFileSync(f, text, { mode: 0o644 });
      return f;
    };
    const ok = write('ok.yaml', JSON.stringify({ dataDir, http: { enabled: false }, smtp: { domains: ['pipe.test'] } }));
    const proc = write('proc.yaml', JSON.stringify({ dataDir: '/proc/postroom-no-such/data', http: { enabled: false } }));
    // A defect stood in for by an exception thrown as soon as the process runs (before it can keep anything).
    const inject = write('inject.mjs', "setImmediate(() => { throw new Error('injected fault'); });\n");
    // Which config (and fault) a recipient gets: pipe(8) expands ${user} to the local part.
    const entry = (transport: string, argv: string) =>
      `${transport}  unix  -       n       n       -       -       pipe\n  flags=Rq user=nobody null_sender= argv=${argv}`;
    const deliverArgs = (config: string) => `${process.execPath} ${BIN} deliver --config ${config} --sender \${sender} --recipient \${original_recipient}`;
    postfix = await startPostfix({
      port: await freePort(),
      pipeDomain: 'pipe.test',
      relayDomain: 'relay.test',
      relayPort: await freePort(),
      pipeEntry: [
        entry('postroom', `/usr/bin/env NODE_OPTIONS=--import=${inject} ${deliverArgs(ok)}`),
        entry('postroomproc', deliverArgs(proc)),
      ].join('\n'),
      extra: ['transport_maps = inline:{ pipe.test=postroom, proc.pipe.test=postroomproc }', 'relay_domains = pipe.test proc.pipe.test relay.test', 'postroomproc_destination_recipient_limit = 1'],
    });
  });
  after(async () => {
    await postfix?.stop();
    tmp.cleanup();
  });

  const lines = (rcpt: string) => postfix!.log().split('\n').filter((l) => l.includes(`to=<${rcpt}>`));
  const deferral = (rcpt: string) =>
    waitFor(() => lines(rcpt).find((l) => /status=(deferred|bounced|sent)/.test(l)), `Postfix's verdict for <${rcpt}>`, 90_000);

  it('an uncaught exception in the pipe: deferred with 4.3.0, still in the queue, no bounce', async () => {
    const r = await swaks(postfix!.port, ['--to', 'box@pipe.test', '--from', 'ann@relay.test', '--header', 'Subject: fault']);
    assert.equal(r.code, 0, r.out);
    const line = await deferral('box@pipe.test');
    assert.match(line, /dsn=4\.3\.0, status=deferred \(Internal error: injected fault ?\)/, line);
    assert.match(postfix!.queue(), /box@pipe\.test/);
    assert.deepEqual(lines('box@pipe.test').filter((l) => /bounced/.test(l)), []);
  });

  it('a dataDir that cannot be created: deferred with 4.3.5 naming it, still in the queue, no bounce', async () => {
    const r = await swaks(postfix!.port, ['--to', 'box@proc.pipe.test', '--from', 'ann@relay.test', '--header', 'Subject: proc']);
    assert.equal(r.code, 0, r.out);
    const line = await deferral('box@proc.pipe.test');
    assert.match(line, /dsn=4\.3\.5, status=deferred \(Cannot create directory \/proc\/postroom-no-such/, line);
    assert.match(postfix!.queue(), /box@proc\.pipe\.test/);
  });
});
