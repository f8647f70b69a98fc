import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DEBIAN_PYTHON, freePort, tempDir } from './env.js';

/**
 * An SMTP sink we control, on Debian's Python with aiosmtpd (python3-aiosmtpd): answers each
 * DATA with the next of `replies` (the last repeats) and keeps what it got byte for byte
 * (aiosmtpd's original_content: after dot-unstuffing, CRLF kept). `rcpt` answers RCPT TO by
 * the recipient's local part ({ defer: '450', refuse: '550' }: defer@… gets 450), 250 else;
 * every RCPT TO it is asked is logged (`rcpts()`).
 */
const SCRIPT = String.raw`
import json, os, sys
from aiosmtpd.controller import Controller
port, outdir, replies, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(','), json.loads(sys.argv[4])
TEXT = {'250': '250 2.0.0 Ok: queued', '450': '450 4.3.0 Try again later', '550': '550 5.7.1 Refused by policy'}
RCPT_TEXT = {'250': '250 2.1.5 Ok', '450': '450 4.2.1 Mailbox busy, try again later', '550': '550 5.1.1 No such user here'}
class Handler:
    n = 0
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        code = rcpt.get(address.split('@')[0], '250')
        with open(os.path.join(outdir, 'rcpts.log'), 'a') as f:
            f.write('%s %s\n' % (address, code))
        if code == '250':
            envelope.rcpt_tos.append(address)
        return RCPT_TEXT[code]
    async def handle_DATA(self, server, session, envelope):
        i = Handler.n
        Handler.n += 1
        reply = replies[min(i, len(replies) - 1)]
        # Each file appears whole (temp name, then rename), the .json last: a reader that lists
        # .json files never sees half a message.
        with open(os.path.join(outdir, '.%04d.eml' % i), 'wb') as f:
            f.write(envelope.original_content)
        os.rename(os.path.join(outdir, '.%04d.eml' % i), os.path.join(outdir, '%04d.eml' % i))
        with open(os.path.join(outdir, '.%04d.json' % i), 'w') as f:
            json.dump({'mailFrom': envelope.mail_from, 'rcptTo': envelope.rcpt_tos, 'reply': reply}, f)
        os.rename(os.path.join(outdir, '.%04d.json' % i), os.path.join(outdir, '%04d.json' % i))
        return TEXT[reply]
c = Controller(Handler(), hostname='127.0.0.1', port=port, decode_data=False)
c.start()
print('READY', flush=True)
sys.stdin.read()
c.stop()
`;

export interface SunkMessage {
  raw: Buffer;
  mailFrom: string;
  rcptTo: string[];
  reply: string;
}

/** Start the sink; `replies` like ['450', '250']. */
export async function pySmtpSink(replies: string[], rcpt: Record<string, '250' | '450' | '550'> = {}) {
  const tmp = tempDir('py-sink-');
  const port = await freePort();
  const child = spawn(DEBIAN_PYTHON, ['-u', '-c', SCRIPT, String(port), tmp.dir, replies.join(','), JSON.stringify(rcpt)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => c.toString().includes('READY') && resolve());
    child.on('exit', (code) => reject(new Error(`aiosmtpd sink exited ${code}: ${err}`)));
  });
  return {
    port,
    /** Every RCPT TO asked so far, as 'address code'. */
    rcpts(): string[] {
      try {
        return readFileSync(path.join(tmp.dir, 'rcpts.log'), 'utf8').split('\n').filter(Boolean);
      } catch {
        return [];
      }
    },
    messages(): SunkMessage[] {
      return readdirSync(tmp.dir)
        .filter((f) => /^\d+\.json$/.test(f))
        .sort()
        .map((f) => ({
          raw: readFileSync(path.join(tmp.dir, f.replace(/\.json$/, '.eml'))),
          ...(JSON.parse(readFileSync(path.join(tmp.dir, f), 'utf8')) as Omit<SunkMessage, 'raw'>),
        }));
    },
    async close() {
      child.stdin.end();
      await new Promise((r) => {
        if (child.exitCode !== null) return r(undefined);
        child.once('exit', r);
        setTimeout(() => child.kill(), 2000).unref();
      });
      tmp.cleanup();
    },
  };
}
