/**
 * The one error taxonomy. Every failure in Postroom is a MailError: transient (retry later) or
 * permanent (give up), with an RFC 3463 enhanced status code and text a human can act on.
 * The catalogue is closed: a MailError's code is one of its keys (an unknown code does not
 * compile), and the status, SMTP code, exit code and HTTP status come from its entry. The one
 * exception is a status someone else chose (relayedError): a remote server's reply, or the
 * refusal an operator configured. toSmtpReply, toSysexit and toHttp map it once; nothing else
 * picks codes.
 */

export type Disposition = 'transient' | 'permanent';

/** Exit codes from <sysexits.h>, which MTAs' pipe transports understand. */
export const SYSEXITS = {
  OK: 0,
  USAGE: 64,
  DATAERR: 65,
  NOINPUT: 66,
  NOUSER: 67,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  CANTCREAT: 73,
  TEMPFAIL: 75,
  PROTOCOL: 76,
  NOPERM: 77,
  CONFIG: 78,
} as const;

interface CatalogueEntry {
  /** RFC 3463 enhanced status code. */
  status: string;
  /** RFC 5321 basic reply code. */
  smtp: number;
  text: string;
  /** sysexits code when permanent, where the status's subject does not pick the right one (toSysexit). */
  exit?: keyof typeof SYSEXITS;
  /** HTTP status, where the disposition and subject do not pick the right one (toHttpStatus). */
  http?: number;
}

/** Every failure Postroom can name, keyed by a stable code (used in logs, metrics, problem JSON). */
export const CATALOGUE = {
  // -- keeping mail --
  STORE_FAILED: { status: '4.3.0', smtp: 451, text: 'Could not store the message; try again later' },
  STORE_FULL: { status: '4.3.1', smtp: 452, text: 'Insufficient storage; try again later', http: 507 },
  // Blobs on object storage (store.blobs: s3): the bucket did not take or confirm the bytes, so
  // nothing was kept and the sender retries. The operator's log line names endpoint and bucket.
  OBJECT_STORE_FAILED: {
    status: '4.3.0',
    smtp: 451,
    text: 'Could not store the message: the object storage is unreachable or refused the upload; try again later',
    http: 503,
  },
  INTERNAL: { status: '4.3.0', smtp: 451, text: 'Internal error; try again later' },
  // Transient: the mail waits (retried per backoff) while an operator fixes the configuration.
  CONFIG: { status: '4.3.5', smtp: 451, text: 'System configuration error' },
  // Permanent: what this delivery names cannot be delivered as configured (an unknown target
  // kind, params that no longer validate, a mail account or its SMTP server gone), so retrying
  // the same delivery cannot succeed; a replay after the fix can. EX_CONFIG, which Postfix
  // pipe(8) reads as 5.3.5 (sys_exits.c).
  MISCONFIGURED: {
    status: '5.3.5',
    smtp: 554,
    text: 'System incorrectly configured for this delivery; fix the configuration, then replay it',
    exit: 'CONFIG',
  },
  SHUTTING_DOWN: { status: '4.3.2', smtp: 421, text: 'Service shutting down; try again later' },
  // GET /readyz: a listener this process should have is not accepting (X.3.0: the mail system
  // as a whole; the detail names the listener).
  NOT_READY: { status: '4.3.0', smtp: 421, text: 'Not ready to take mail; try again later' },
  // -- connection and session --
  TOO_MANY_CLIENTS: { status: '4.7.0', smtp: 421, text: 'Too many connections; try again later' },
  TOO_MANY_FROM_IP: { status: '4.7.0', smtp: 421, text: 'Too many connections from your address; try again later' },
  TIMEOUT: { status: '4.4.2', smtp: 421, text: 'Timeout; closing connection' },
  EARLY_TALKER: { status: '5.5.1', smtp: 554, text: 'Protocol error: talked before the greeting (RFC 5321 section 3.1)' },
  CLIENT_REFUSED: { status: '5.7.1', smtp: 554, text: 'Client host rejected: access denied' },
  AUTH_REQUIRED: { status: '5.7.0', smtp: 530, text: 'Authentication required' },
  AUTH_FAILED: { status: '5.7.8', smtp: 535, text: 'Authentication credentials invalid' },
  AUTH_NEEDS_TLS: { status: '5.7.0', smtp: 538, text: 'Must issue a STARTTLS command first' },
  // -- envelope --
  TOO_MANY_RECIPIENTS: { status: '4.5.3', smtp: 452, text: 'Too many recipients' },
  UNKNOWN_RECIPIENT: { status: '5.1.1', smtp: 550, text: 'No such recipient here' },
  BAD_SENDER_ADDRESS: { status: '5.1.7', smtp: 553, text: 'Bad sender address syntax' },
  BAD_RECIPIENT_ADDRESS: { status: '5.1.3', smtp: 553, text: 'Bad recipient address syntax' },
  NO_RECIPIENT: { status: '5.1.3', smtp: 554, text: 'No recipient could be determined' },
  RELAY_DENIED: { status: '5.7.1', smtp: 554, text: 'Relay access denied' },
  SENDER_DENIED: { status: '5.7.1', smtp: 550, text: 'Sender not allowed' },
  // Postfix's reject_sender_login_mismatch answers the same.
  SENDER_NOT_OWNED: { status: '5.7.1', smtp: 553, text: 'Sender address not owned by the authenticated user' },
  NOT_AUTHORISED: { status: '5.7.1', smtp: 550, text: 'Not authorised to deliver to this address' },
  // -- content --
  TOO_LARGE: { status: '5.3.4', smtp: 552, text: 'Message size exceeds fixed maximum message size', http: 413 },
  EMPTY_MESSAGE: { status: '5.3.0', smtp: 554, text: 'Message is empty' },
  BARE_LINE_ENDING: { status: '5.5.2', smtp: 550, text: 'Bare LF or bare CR in message data is not allowed (RFC 5321 section 2.3.8)' },
  PROTOCOL: { status: '5.5.0', smtp: 500, text: 'Protocol error' },
  UNKNOWN_PARAMETER: { status: '5.5.4', smtp: 555, text: 'MAIL FROM/RCPT TO parameter not recognized or not implemented' },
  MESSAGE_ID_REQUIRED: { status: '5.6.0', smtp: 550, text: 'Message-ID header required' },
  BAD_CONTENT: { status: '5.6.0', smtp: 550, text: 'Message content not acceptable' },
  REJECTED: { status: '5.7.1', smtp: 550, text: 'Message rejected' },
  /** RFC 7372 §3.1: the sender's domain publishes a DMARC policy this message fails. */
  DMARC_FAILED: { status: '5.7.26', smtp: 550, text: "Message fails the sender domain's DMARC policy (RFC 7489)" },
  /** A route asks for passing SPF/DKIM/ARC and the message does not pass; the text names which. */
  SENDER_AUTH_FAILED: { status: '5.7.1', smtp: 550, text: 'Sender authentication failed' },
  // RFC 3463 X.4.6: the message came back to a place it already passed (Received: count, our
  // own trace, a group's List-Id). Never retried and never bounced: a DSN would feed the loop.
  MAIL_LOOP: { status: '5.4.6', smtp: 554, text: 'Routing loop detected' },
  // -- delivery to targets --
  TARGET_TEMPFAIL: { status: '4.4.1', smtp: 451, text: 'Target temporarily unavailable' },
  TARGET_CONNECT: { status: '4.4.4', smtp: 451, text: 'Cannot connect to target' },
  TARGET_BUSY: { status: '4.4.5', smtp: 451, text: 'Target busy' },
  TARGET_REJECTED: { status: '5.0.0', smtp: 550, text: 'Target rejected the message' },
  BAD_ANSWER: { status: '4.5.0', smtp: 451, text: 'Undecodable answer from server' },
  BAD_URL: { status: '4.5.2', smtp: 451, text: 'URL has no host' },
  DEADLINE: { status: '4.4.7', smtp: 451, text: 'Gave up within the time limit; try again later' },
  // A target (webhook, workflow command or HTTP call, a whole attempt) that took longer than its
  // configured timeout: X.4.7, the time limit set for this delivery expired (RFC 3463 §3.5), as
  // DEADLINE for the pipe. Not TIMEOUT (4.4.2, 421): that is our SMTP server closing an idle
  // client's connection. Transient: the next attempt may be answered in time.
  TARGET_TIMEOUT: { status: '4.4.7', smtp: 451, text: 'Target did not answer within its timeout; will retry' },
  TARGET_PRIVATE: { status: '5.7.1', smtp: 550, text: 'Target address is loopback, link-local or private' },
  TARGET_REDIRECT: { status: '5.4.0', smtp: 550, text: 'Target answered with a redirect, which is not followed' },
  // RFC 3463 X.1.6: "destination … has moved, no forwarding address" is what 410 Gone says.
  TARGET_GONE: { status: '5.1.6', smtp: 550, text: 'Target is gone' },
  SPOOL_REFUSED: { status: '5.3.0', smtp: 550, text: 'The spool directory\'s file system refuses this file' },
  // -- API --
  UNAUTHORISED: { status: '5.7.0', smtp: 530, text: 'Missing or invalid API token', http: 401 },
  // Signed in, but the role (or the token's scope) does not reach this; or a cross-site request.
  FORBIDDEN: { status: '5.7.1', smtp: 550, text: 'Not allowed', http: 403 },
  // Too many failed sign-ins; retryAfter says when to try again (RFC 6585 §4).
  TOO_MANY_REQUESTS: { status: '4.7.0', smtp: 421, text: 'Too many attempts; try again later', http: 429 },
  NOT_FOUND: { status: '5.1.1', smtp: 550, text: 'Not found', http: 404 },
  INVALID_REQUEST: { status: '5.5.4', smtp: 501, text: 'Invalid request', http: 400 },
  // 5.6.1: media not supported (RFC 3463 §3.7).
  UNSUPPORTED_MEDIA_TYPE: { status: '5.6.1', smtp: 554, text: 'Unsupported media type', http: 415 },
  // The request is well-formed but clashes with what is stored (a name taken, a thing still in use).
  CONFLICT: { status: '5.0.0', smtp: 550, text: 'Conflicts with the current state', http: 409 },
  // A route sent to /api/v1/routes that the route schema refuses; the detail names each key path.
  ROUTE_INVALID: { status: '5.5.4', smtp: 501, text: 'Route invalid', http: 422 },
  // A config file a reload refused (each problem on its key path); the running config is kept.
  CONFIG_INVALID: { status: '5.3.5', smtp: 554, text: 'Configuration invalid: the running configuration is kept', http: 422, exit: 'CONFIG' },
  // A condition the client set does not hold (WebDAV Overwrite: F onto an existing name, RFC 4918 §10.6).
  PRECONDITION_FAILED: { status: '5.0.0', smtp: 550, text: 'Precondition failed', http: 412 },
  // A download's Range lies wholly past the end of the bytes (RFC 9110 §15.5.17).
  RANGE_NOT_SATISFIABLE: { status: '5.5.4', smtp: 501, text: 'Requested range not satisfiable', http: 416 },
  // -- command line --
  // `postroom import`: a file that is not in the format asked for (no From_ line first, a
  // Content-Length that does not end at one): nothing more of that file is read.
  BAD_MAILBOX: { status: '5.6.0', smtp: 554, text: 'Not a mailbox in the format asked for', exit: 'DATAERR' },
  // `postroom import` / `export`: a file or folder named on the command line cannot be read.
  NO_INPUT: { status: '5.3.0', smtp: 554, text: 'Cannot read the input named on the command line', exit: 'NOINPUT' },
  // `postroom export --out`: the output cannot be written.
  CANT_CREATE: { status: '5.3.0', smtp: 554, text: 'Cannot create the output file', exit: 'CANTCREAT' },
  USAGE: { status: '5.5.4', smtp: 501, text: 'Command line usage error', exit: 'USAGE' },
  // `postroom deliver --sender` that is no address (a quoting mistake in master.cf): X.1.7 on
  // stderr says which address is bad, EX_USAGE makes the MTA bounce rather than keep it.
  USAGE_BAD_SENDER: {
    status: '5.1.7',
    smtp: 553,
    text: "--sender is not an address (RFC 5321 local@domain; '' for <>): check the pipe's command line",
    exit: 'USAGE',
  },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof CATALOGUE;

/** Whether a string (a code in a problem document from another Postroom) names a catalogue entry. */
export function isErrorCode(s: string): s is ErrorCode {
  return Object.hasOwn(CATALOGUE, s);
}

/** An RFC 3463 enhanced status: class 2, 4 or 5, subject and detail of up to three digits. */
const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3}$/;

/**
 * A failure with a kind: transient or permanent, an enhanced status and a stable code. Built by
 * mailError (the catalogue's status) or relayedError (someone else's) only, never with `new`
 * elsewhere: test/unit/errors.test.ts reads the sources to hold that.
 */
export class MailError extends Error {
  readonly code: ErrorCode;
  readonly status: string;
  readonly smtpCode: number;
  readonly disposition: Disposition;
  /** Seconds after which a retry makes sense (e.g. an upstream's Retry-After). */
  readonly retryAfter?: number;

  constructor(
    code: ErrorCode,
    opts: { status: string; smtpCode: number; message: string; cause?: unknown; retryAfter?: number },
  ) {
    super(opts.message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'MailError';
    this.code = code;
    this.status = opts.status;
    this.smtpCode = opts.smtpCode;
    this.disposition = opts.status.startsWith('4') ? 'transient' : 'permanent';
    this.retryAfter = opts.retryAfter;
  }

  get transient(): boolean {
    return this.disposition === 'transient';
  }
}

/** Build a catalogued MailError, optionally with a more specific human text. */
export function mailError(code: ErrorCode, detail?: string, extra: { cause?: unknown; retryAfter?: number } = {}): MailError {
  const entry: CatalogueEntry = CATALOGUE[code];
  return new MailError(code, {
    status: entry.status,
    smtpCode: entry.smtp,
    message: detail ?? entry.text,
    cause: extra.cause,
    retryAfter: extra.retryAfter,
  });
}

/**
 * A MailError whose enhanced status someone else chose: the reply of a remote server (SMTP, the
 * HTTP intake of another Postroom), or the refusal an operator configured (the reject target).
 * Those words are passed on as they are, class and all (the class is the disposition, RFC 3463
 * §3.1); `code` says what kind of failure it is. A status that is no RFC 3463 code falls back to
 * the entry's; an SMTP code of the other class than the status falls back to the entry's, or to
 * 451/550. Our own statuses are never passed here: they belong in the catalogue.
 */
export function relayedError(
  code: ErrorCode,
  status: string,
  detail: string,
  extra: { smtpCode?: number; cause?: unknown; retryAfter?: number } = {},
): MailError {
  const entry: CatalogueEntry = CATALOGUE[code];
  const enhanced = ENHANCED.test(status) && !status.startsWith('2') ? status : entry.status;
  const sameClass = (n: number | undefined) => n !== undefined && String(n)[0] === enhanced[0];
  const smtpCode = sameClass(extra.smtpCode) ? extra.smtpCode! : sameClass(entry.smtp) ? entry.smtp : enhanced[0] === '4' ? 451 : 550;
  return new MailError(code, { status: enhanced, smtpCode, message: detail, cause: extra.cause, retryAfter: extra.retryAfter });
}

// 53100: PostgreSQL's disk_full SQLSTATE (the database's disk, when blobs and rows live there).
// SQLITE_FULL: SQLite's, when small blobs and rows cannot be written to the database file.
const DISK_FULL = new Set(['ENOSPC', 'EDQUOT', '53100', 'SQLITE_FULL']);

/**
 * Any thrown value as a MailError. Unknown errors are transient: a sender that retries loses
 * nothing, a sender told 5xx by mistake loses the message (zone-mta's rule, kept).
 */
export function asMailError(err: unknown): MailError {
  if (err instanceof MailError) return err;
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  if (errno && DISK_FULL.has(errno)) return mailError('STORE_FULL', undefined, { cause: err });
  return mailError('INTERNAL', undefined, { cause: err });
}

/** SMTP reply for an error: basic code, enhanced status, text (RFC 3463 §2, RFC 2034). */
export function toSmtpReply(err: unknown): { code: number; message: string } {
  const e = asMailError(err);
  const text = e.code === 'INTERNAL' ? CATALOGUE.INTERNAL.text : e.message;
  return { code: e.smtpCode, message: `${e.status} ${text.replace(/[\r\n]+/g, ' ')}` };
}

/**
 * sysexits code for an error. Transient is always EX_TEMPFAIL so the MTA defers; never 1,
 * which Postfix would treat as a bounce with no reason.
 */
export function toSysexit(err: unknown): number {
  const e = asMailError(err);
  if (e.transient) return SYSEXITS.TEMPFAIL;
  const exit = (CATALOGUE[e.code] as CatalogueEntry).exit;
  if (exit) return SYSEXITS[exit];
  const [, subject, detail] = e.status.split('.');
  if (subject === '1') return e.status === '5.1.1' ? SYSEXITS.NOUSER : SYSEXITS.DATAERR;
  if (subject === '7') return SYSEXITS.NOPERM;
  if (subject === '5') return SYSEXITS.PROTOCOL;
  if (subject === '3' && detail === '0') return SYSEXITS.NOINPUT;
  return SYSEXITS.DATAERR;
}

/** The line a pipe command prints on stderr: enhanced status first, as Postfix pipe(8) reads it. */
export function toStderrLine(err: unknown): string {
  const e = asMailError(err);
  return `${e.status} ${e.message.replace(/[\r\n]+/g, ' ')}`;
}

/** HTTP status for an error. */
export function toHttpStatus(err: unknown): number {
  const e = asMailError(err);
  const http = (CATALOGUE[e.code] as CatalogueEntry).http;
  if (http) return http;
  if (e.transient) return 503;
  const subject = e.status.split('.')[1];
  if (subject === '7') return 403;
  if (subject === '1') return 422;
  return 422;
}

/** RFC 9457 problem document for an error. */
export function toProblem(err: unknown, instance?: string): Record<string, unknown> {
  const e = asMailError(err);
  return {
    type: `urn:postroom:error:${e.code.toLowerCase()}`,
    title: e.code,
    status: toHttpStatus(e),
    detail: e.code === 'INTERNAL' ? CATALOGUE.INTERNAL.text : e.message,
    code: e.code,
    enhancedStatus: e.status,
    disposition: e.disposition,
    ...(instance ? { instance } : {}),
  };
}
