import http from 'node:http';
import https from 'node:https';
import { mailError } from '../core/errors.js';
import { answerOutcome, type IntakeAnswer } from '../net/remote-answer.js';

/** The HTTP intake path on a Postroom server. */
export const INBOUND_PATH = '/api/v1/inbound';

/**
 * The intake URL for a server URL given on the command line: a base URL (http://mx:8025) gets
 * /api/v1/inbound appended; a URL that already ends with it is used as it is. No host (or not
 * http/https) is 4.5.2: transient, as smtp2gs has it, so a typo in master.cf defers mail rather
 * than bouncing it.
 */
export function intakeUrl(given: string): URL {
  // WHATWG URL parsing reads `http:///foo` as host `foo`; smtp2gs (and RFC 3986) see an empty
  // authority there, a typo to defer on (4.5.2), not a host to try to connect to (4.4.4).
  if (/^[a-z][a-z0-9+.-]*:\/\/(?:[/?#]|$)/i.test(given.trim())) throw mailError('BAD_URL', `URL has no host: ${given}`);
  let u: URL;
  try {
    u = new URL(given);
  } catch {
    throw mailError('BAD_URL', `URL has no host: ${given}`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !u.hostname) throw mailError('BAD_URL', `URL has no host: ${given}`);
  if (!u.pathname.replace(/\/+$/, '').endsWith(INBOUND_PATH)) u.pathname = u.pathname.replace(/\/+$/, '') + INBOUND_PATH;
  return u;
}

// An answer is a short JSON document; anything longer is not one of ours.
const MAX_ANSWER = 64 * 1024;

/**
 * POST the message to the intake, streaming `body` with backpressure. The server may answer
 * before the body ends (a refusal, 413): we stop sending and take its answer. A connection
 * that fails before any answer is 4.4.4.
 */
export async function postMessage(
  url: URL,
  token: string,
  body: AsyncIterable<Buffer>,
  signal: AbortSignal,
): Promise<{ id: string }> {
  const lib = url.protocol === 'https:' ? https : http;
  const req = lib.request(url, {
    method: 'POST',
    headers: { 'content-type': 'message/rfc822', authorization: `Bearer ${token}`, accept: 'application/json' },
    signal,
  });
  let answered = false;
  const answer = new Promise<IntakeAnswer>((resolve, reject) => {
    req.on('response', (res) => {
      answered = true;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (text.length < MAX_ANSWER) text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: text }));
      res.on('error', reject);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (signal.aborted) return reject(mailError('DEADLINE'));
      reject(mailError('TARGET_CONNECT', `Cannot connect to ${url.host}: ${err.code ?? err.message}`, { cause: err }));
    });
  });
  // Observed here so an early rejection is not "unhandled" while we are still sending.
  answer.catch(() => {});
  try {
    for await (const chunk of body) {
      if (answered || req.destroyed) break;
      if (!req.write(chunk)) {
        await Promise.race([new Promise((r) => req.once('drain', r)), answer.then(() => undefined, () => undefined)]);
      }
    }
  } catch (err) {
    // The body failed (too large, unreadable): nothing is sent in full, the server keeps nothing.
    req.destroy();
    throw err;
  }
  const early = answered;
  if (!answered && !req.destroyed) req.end();
  const a = await answer;
  // Answered before we finished sending: the connection is in no state to be reused.
  if (early) req.destroy();
  return answerOutcome(a);
}
