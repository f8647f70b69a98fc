import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { mailError, type MailError } from '../core/errors.js';
import type { HeaderLine } from '../core/message.js';

/** What makes a message a loop (smtp.maxReceived, smtp.maxPasses) and how we recognise our own trace. */
export interface LoopLimits {
  /** Received: headers past this many: a loop (RFC 5321 §6.3 asks for a limit; Postfix's hopcount_limit is 50). */
  maxReceived: number;
  /** Passes through this installation (our Received: headers carrying `installationId`) at which a message is refused. */
  maxPasses: number;
  /** This installation's id, written in our Received: header; undefined: passes are not counted. */
  installationId?: string;
}

/**
 * The id in our Received: header that tells this installation's trace from others'. Derived
 * from the secret key, which every node of one installation shares (they must, to open each
 * other's mail-account passwords), so it needs no file or row of its own and reveals nothing
 * of the key. `create: false` (the pipe command, run by the MTA's user) never writes the key
 * file: one created by that user would be unreadable for the server; without it, only
 * Received: headers are counted.
 */
export function installationId(configured: string | undefined, dataDir: string, resolve?: (c: string | undefined, d: string) => string): string | undefined {
  let secret = configured;
  if (!secret) {
    try {
      secret = resolve ? resolve(configured, dataDir) : readFileSync(path.join(dataDir, 'secret-key'), 'utf8').trim();
    } catch {
      return undefined;
    }
  }
  return secret ? createHmac('sha256', secret).update('postroom installation id').digest('hex').slice(0, 12) : undefined;
}

/**
 * A mail loop in the message's own header block, as MAIL_LOOP (554 5.4.6), or undefined. Two
 * signs (RFC 5321 §6.3): more Received: headers than any sane path has (each relay adds one,
 * so a loop through other MTAs grows without end), and our own trace seen `maxPasses` times (a
 * route forwarding to our own listener, directly or through another MTA, brings the message
 * back with one more of our Received: headers each time). Refused, the message is not kept, so
 * nothing forwards, relays or bounces it again.
 */
export function loopOf(headers: HeaderLine[], limits: LoopLimits): MailError | undefined {
  const received = headers.filter(([n]) => n.toLowerCase() === 'received');
  if (received.length > limits.maxReceived) {
    return mailError('MAIL_LOOP', `Routing loop detected: ${received.length} Received: headers, more than ${limits.maxReceived} (smtp.maxReceived)`);
  }
  if (!limits.installationId) return undefined;
  const mark = `(Postroom ${limits.installationId})`;
  const passes = received.filter(([, v]) => v.includes(mark)).length;
  if (passes >= limits.maxPasses) {
    return mailError('MAIL_LOOP', `Routing loop detected: the message has passed this Postroom ${passes} times (smtp.maxPasses ${limits.maxPasses})`);
  }
  return undefined;
}
