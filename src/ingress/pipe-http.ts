import http from 'node:http';
import https from 'node:https';
import { CATALOGUE, isErrorCode, mailError, relayedError } from '../core/errors.js';

/** The HTTP intake path on a Postroom server. */
export const INBOUND_PATH = '/api/v1/inbound';

/**
 * The intake URL for a server URL given on the command line: a base URL (http://mx:8025) gets
 * /api/v1/inbound appended; a URL that already ends with it is used as it is. No host (or not
 * http/https) is 4.5.2: transient, as smtp2gs has it, so a typo in master.cf defers mail rather
 * than bouncing it.
 */
export function intakeUrl(given: string): URL {
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

/** The server's answer, as far as we read it. */
interface Answer {
  status: number;
  contentType: string;
  body: string;
}

// An answer is a short JSON document; anything longer is not one of ours.
const MAX_ANSWER = 64 * 1024;

/**
 * An HTTP answer as the outcome of the delivery: 2xx with `{ id }` is kept; a problem document
 * carries its RFC 3463 code (5.1.1 unknown recipient, 5.7.1 not allowed, 5.3.4 too large, 4.3.x
 * could not keep); 401 is a bad token (4.5.0, the admin fixes the INI file while mail waits);
 * 429/503 without a problem is busy (4.4.5); 404 means no intake at that URL (4.3.5); a problem
 * saying our request was malformed is a protocol error (5.5.0); anything else is undecodable
 * (4.5.0). Unknown ⇒ transient: a deferral costs a retry, a wrong bounce loses the mail.
 */
export function answerOutcome(a: Answer): { id: string } {
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(a.body) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  if (a.status >= 200 && a.status < 300) {
    if (json && typeof json.id === 'string' && json.id) return { id: json.id };
    throw mailError('BAD_ANSWER', `Undecodable answer from server (HTTP ${a.status}, no message id)`);
  }
  if (a.status === 401) throw mailError('BAD_ANSWER', 'The server refused the token (HTTP 401): check the INI file');
  if (a.status === 404) throw mailError('CONFIG', 'No HTTP intake at that URL (HTTP 404)');
  const status = typeof json?.enhancedStatus === 'string' && /^[45]\.\d{1,3}\.\d{1,3}$/.test(json.enhancedStatus) ? json.enhancedStatus : undefined;
  if (json && status && /problem\+json|json/.test(a.contentType)) {
    const code = typeof json.code === 'string' ? json.code : 'REMOTE';
    const detail = typeof json.detail === 'string' ? json.detail : isErrorCode(code) ? CATALOGUE[code].text : `HTTP ${a.status}`;
    if (code === 'INVALID_REQUEST') throw mailError('PROTOCOL', `The server did not understand the request: ${detail}`);
    return throwRemote(code, status, detail);
  }
  if (a.status === 429 || a.status === 503) throw mailError('TARGET_BUSY', `Server busy (HTTP ${a.status})`);
  throw mailError('BAD_ANSWER', `Undecodable answer from server (HTTP ${a.status})`);
}

/** The server's code and status passed on; a code this build does not know is a target failure of the status's class. */
function throwRemote(code: string, status: string, detail: string): never {
  throw relayedError(isErrorCode(code) ? code : status.startsWith('4') ? 'TARGET_TEMPFAIL' : 'TARGET_REJECTED', status, detail);
}

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
  const answer = new Promise<Answer>((resolve, reject) => {
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
