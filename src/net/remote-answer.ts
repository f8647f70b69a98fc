import { CATALOGUE, isErrorCode, mailError, MailError, relayedError } from '../core/errors.js';

/*
 * A remote party's answer as a MailError, in one place: an HTTP status (webhook and workflow
 * targets), an SMTP reply (forward, group relay, outbound), an IMAP response (fetching), and a
 * Postroom server's answer to the pipe's HTTP intake. Each keeps the rule the rest of Postroom
 * keeps: unknown ⇒ transient, because a deferral costs a retry and a wrong bounce loses mail.
 */

/** What an HTTP status means for the delivery. 2xx is success and never reaches here. */
export function httpStatusError(status: number, detail: string, retryAfter?: number): MailError {
  const text = `HTTP ${status}${detail ? `: ${detail}` : ''}`;
  // 408 Request Timeout, 425 Too Early, 429 Too Many Requests: the receiver asks us to come back.
  if (status === 408 || status === 425) return mailError('TARGET_TEMPFAIL', text);
  // 429 Too Many Requests and 503 Service Unavailable with Retry-After (RFC 9110 §15.6.4): the
  // receiver says when to come back; that time is the floor of the next attempt's.
  if (status === 429 || (status === 503 && retryAfter !== undefined)) return mailError('TARGET_BUSY', text, { retryAfter });
  if (status >= 300 && status < 400) return mailError('TARGET_REDIRECT', `${text} (redirects are not followed: point the route at the final URL)`);
  // 410 Gone (RFC 9110 §15.5.11): the endpoint is gone for good, not just this request. The
  // worker pauses the route's target on it, as Standard Webhooks senders disable the endpoint,
  // so the rest of its queue is held instead of each delivery failing in turn.
  if (status === 410) return mailError('TARGET_GONE', `${text} (the route's target is paused until an operator resumes it)`);
  // Every other 4xx: the request itself is wrong; repeating it will not help.
  if (status >= 400 && status < 500) return mailError('TARGET_REJECTED', text);
  return mailError('TARGET_TEMPFAIL', text);
}

export interface SmtpError extends Error {
  code?: string;
  response?: string;
  responseCode?: number;
  permanent?: boolean;
  rejected?: string[];
  rejectedErrors?: SmtpError[];
  recipient?: string;
}

/** The enhanced status in an SMTP reply ('550 5.1.1 …'), or the class default (RFC 3463 §3). */
export function enhancedOf(reply: string | undefined, code: number): string {
  const m = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply ?? '');
  return m ? m[1] : `${String(code)[0]}.0.0`;
}

/**
 * An SMTP failure as MailError. A reply code decides: 4xx transient, 5xx permanent (nodemailer's
 * `permanent` flag is used where it has one: it counts 503 after a failed pipelined command as
 * transient). No reply at all (refused, reset, TLS, DNS) is transient: unknown ⇒ retry.
 */
export function smtpFailure(err: SmtpError, host: string): MailError {
  const code = err.responseCode ?? err.rejectedErrors?.find((e) => e.responseCode)?.responseCode;
  const reply = (err.response ?? err.rejectedErrors?.find((e) => e.response)?.response ?? '').replace(/\s+/g, ' ').trim();
  if (code) {
    const permanent = err.permanent ?? code >= 500;
    const status = enhancedOf(reply, permanent ? 5 : 4);
    const fixed = status[0] === (permanent ? '5' : '4') ? status : `${permanent ? 5 : 4}${status.slice(1)}`;
    return relayedError(permanent ? 'TARGET_REJECTED' : 'TARGET_TEMPFAIL', fixed, `${host} said: ${reply || code}`, { cause: err });
  }
  return mailError('TARGET_CONNECT', `${host}: ${err.code ?? 'error'}: ${err.message}`, { cause: err });
}

export interface ImapErrorLike extends Error {
  code?: string;
  authenticationFailed?: boolean;
  mailboxMissing?: boolean;
  responseText?: string;
  serverResponseCode?: string;
  tlsFailed?: boolean;
}

/**
 * An IMAP failure as MailError. A refused login is AUTH_FAILED (5.7.8: retrying the same
 * password will not help, but the watcher keeps trying slowly in case it is changed on the
 * server); a missing folder NOT_FOUND; anything else (refused, reset, timeout, TLS) is a
 * transient connection failure.
 */
export function imapFailure(err: unknown, host: string): MailError {
  if (err instanceof MailError) return err;
  const e = (err ?? {}) as ImapErrorLike;
  const text = (e.responseText || e.message || String(err)).replace(/\s+/g, ' ').trim();
  if (e.authenticationFailed || e.serverResponseCode === 'AUTHENTICATIONFAILED') {
    return mailError('AUTH_FAILED', `${host}: login refused: ${text}`, { cause: err });
  }
  if (e.mailboxMissing || e.serverResponseCode === 'NONEXISTENT') {
    return mailError('NOT_FOUND', `${host}: no such folder: ${text}`, { cause: err });
  }
  return mailError('TARGET_CONNECT', `${host}: ${e.code ? `${e.code}: ` : ''}${text}`, { cause: err });
}

/** A Postroom server's answer to the pipe's HTTP intake, as far as the pipe read it. */
export interface IntakeAnswer {
  status: number;
  contentType: string;
  body: string;
}

/**
 * An HTTP answer as the outcome of the delivery: 2xx with `{ id }` is kept; a problem document
 * carries its RFC 3463 code (5.1.1 unknown recipient, 5.7.1 not allowed, 5.3.4 too large, 4.3.x
 * could not keep); 401 is a bad token (4.5.0, the admin fixes the INI file while mail waits);
 * 429/503 without a problem is busy (4.4.5); 404 means no intake at that URL (4.3.5); a problem
 * saying our request was malformed is a protocol error (5.5.0); anything else is undecodable
 * (4.5.0). Unknown ⇒ transient: a deferral costs a retry, a wrong bounce loses the mail.
 */
export function answerOutcome(a: IntakeAnswer): { id: string } {
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
