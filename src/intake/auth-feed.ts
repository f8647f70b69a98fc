import { PassThrough } from 'node:stream';
import type { AuthVerdict } from '../core/auth.js';
import type { HeaderSniffer } from '../mime/header-sniff.js';
import { unfinished, type Authenticator, type SessionFacts } from './authenticate.js';

export interface VerifierFeed {
  /** Hand the verifier the next chunk; waits while it is behind (its buffer is bounded). */
  push(chunk: Uint8Array): Promise<void>;
  end(): void;
  /** The bytes will not all come (the message was refused): stop verifying. */
  abort(): void;
  verdict: Promise<AuthVerdict>;
}

/**
 * The verifier's side of the intake stream. It is fed only while the header block is within
 * the intake's header limit: mailauth holds the whole header in memory until the blank line,
 * so a message that is all header would otherwise cost its whole size. Past the limit the
 * verdict is permerror (the message cannot be read as RFC 5322 says), and keeping goes on.
 */
export function feedVerifier(verify: Authenticator, facts: SessionFacts, sniffer: HeaderSniffer): VerifierFeed {
  const pt = new PassThrough({ highWaterMark: 256 * 1024 });
  let settled = false;
  let stopped = false;
  const verdict = verify(pt, facts).finally(() => {
    settled = true;
  });
  const done = verdict.then(() => undefined);
  const stop = () => {
    if (stopped) return;
    stopped = true;
    pt.destroy();
  };
  return {
    async push(chunk) {
      if (stopped || settled) return;
      if (sniffer.state === 'over') {
        stop();
        return;
      }
      if (!pt.write(chunk)) await Promise.race([new Promise((r) => pt.once('drain', r)), done]);
    },
    end() {
      if (!stopped) pt.end();
    },
    abort: stop,
    verdict: verdict.then((v) =>
      stopped && sniffer.state === 'over'
        ? {
            ...unfinished(v.authservId, 'the header block is larger than parse.maxHeaderSize'),
            dmarc: { result: 'permerror', domain: null, policy: null, alignment: { spf: false, dkim: false } },
            arc: { result: 'permerror' },
          }
        : v,
    ),
  };
}
