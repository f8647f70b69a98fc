// A process that starts a throw-away Postfix and then dies the way argv[2] says, for
// test/interop/postfix-main-cf.test.ts: `wait` (until killed), or `throw` (an uncaught error,
// as a failing test run ends). Prints `READY <etc dir> <port>` once Postfix answers.
import path from 'node:path';
import { startPostfix } from './postfix.js';

const how = process.argv[2] ?? 'wait';
const pf = await startPostfix({
  pipeDomain: 'pipe.test',
  relayDomain: 'relay.test',
  relayPort: 9, // nothing is relayed
  pipeEntry: 'postroom unix - n n - - pipe\n  flags=R user=nobody argv=/bin/true',
});
process.stdout.write(`READY ${path.join(pf.dir, 'etc')} ${pf.port}\n`);
if (how === 'throw') throw new Error('a test failed, and nothing called stop()');
setInterval(() => {}, 60_000);
