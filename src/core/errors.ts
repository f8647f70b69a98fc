/**
 * The one error taxonomy. Every failure in Postroom is a MailError: transient (retry later) or
 * permanent (give up), with an RFC 3463 enhanced status code and text a human can act on.
 * toSmtpReply, toSysexit and toHttp map it once; nothing else picks codes.
 */

export type Disposition = 'transient' | 'permanent';

interface CatalogueEntry {
  /** RFC 3463 enhanced status code. */
  status: string;
  /** RFC 5321 basic reply code. */
  smtp: number;
  text: string;
}

/** Every failure Postroom can name, keyed by a stable code (used in logs, metrics, problem JSON). */
export const CATALOGUE = {
  // -- keeping mail --
  STORE_FAILED: { status: '4.3.0', smtp: 451, text: 'Could not store the message; try again later' },
  STORE_FULL: { status: '4.3.1', smtp: 452, text: 'Insufficient storage; try again later' },
  INTERNAL: { status: '4.3.0', smtp: 451, text: 'Internal error; try again later' },
  CONFIG: { status: '4.3.5', smtp: 451, text: 'System configuration error' },
  SHUTTING_DOWN: { status: '4.3.2', smtp: 421, text: 'Service shutting down; try again later' },
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
  NOT_AUTHORISED: { status: '5.7.1', smtp: 550, text: 'Not authorised to deliver to this address' },
  // -- content --
  TOO_LARGE: { status: '5.3.4', smtp: 552, text: 'Message size exceeds fixed maximum message size' },
  EMPTY_MESSAGE: { status: '5.3.0', smtp: 554, text: 'Message is empty' },
  BARE_LINE_ENDING: { status: '5.5.2', smtp: 550, text: 'Bare LF or bare CR in message data is not allowed (RFC 5321 section 2.3.8)' },
  PROTOCOL: { status: '5.5.0', smtp: 500, text: 'Protocol error' },
  UNKNOWN_PARAMETER: { status: '5.5.4', smtp: 555, text: 'MAIL FROM/RCPT TO parameter not recognized or not implemented' },
  MESSAGE_ID_REQUIRED: { status: '5.6.0', smtp: 550, text: 'Message-ID header required' },
  BAD_CONTENT: { status: '5.6.0', smtp: 550, text: 'Message content not acceptable' },
  REJECTED: { status: '5.7.1', smtp: 550, text: 'Message rejected' },
  MAIL_LOOP: { status: '5.4.6', smtp: 554, text: 'Routing loop detected' },
  // -- delivery to targets --
  TARGET_TEMPFAIL: { status: '4.4.1', smtp: 451, text: 'Target temporarily unavailable' },
  TARGET_CONNECT: { status: '4.4.4', smtp: 451, text: 'Cannot connect to target' },
  TARGET_BUSY: { status: '4.4.5', smtp: 451, text: 'Target busy' },
  TARGET_REJECTED: { status: '5.0.0', smtp: 550, text: 'Target rejected the message' },
  BAD_ANSWER: { status: '4.5.0', smtp: 451, text: 'Undecodable answer from server' },
  BAD_URL: { status: '4.5.2', smtp: 451, text: 'URL has no host' },
  DEADLINE: { status: '4.4.7', smtp: 451, text: 'Gave up within the time limit; try again later' },
  TARGET_PRIVATE: { status: '5.7.1', smtp: 550, text: 'Target address is loopback, link-local or private' },
  TARGET_REDIRECT: { status: '5.4.0', smtp: 550, text: 'Target answered with a redirect, which is not followed' },
  // RFC 3463 X.1.6: "destination … has moved, no forwarding address" is what 410 Gone says.
  TARGET_GONE: { status: '5.1.6', smtp: 550, text: 'Target is gone' },
  SPOOL_REFUSED: { status: '5.3.0', smtp: 550, text: 'The spool directory\'s file system refuses this file' },
  // -- API --
  UNAUTHORISED: { status: '5.7.0', smtp: 530, text: 'Missing or invalid API token' },
  // Signed in, but the role (or the token's scope) does not reach this; or a cross-site request.
  FORBIDDEN: { status: '5.7.1', smtp: 550, text: 'Not allowed' },
  // Too many failed sign-ins; retryAfter says when to try again (RFC 6585 §4).
  TOO_MANY_REQUESTS: { status: '4.7.0', smtp: 421, text: 'Too many attempts; try again later' },
  NOT_FOUND: { status: '5.1.1', smtp: 550, text: 'Not found' },
  INVALID_REQUEST: { status: '5.5.4', smtp: 501, text: 'Invalid request' },
  // -- command line --
  USAGE: { status: '5.5.4', smtp: 501, text: 'Command line usage error' },
  // 5.6.1: media not supported (RFC 3463 §3.7).
  UNSUPPORTED_MEDIA_TYPE: { status: '5.6.1', smtp: 554, text: 'Unsupported media type' },
  // The request is well-formed but clashes with what is stored (a name taken, a thing still in use).
  CONFLICT: { status: '5.0.0', smtp: 550, text: 'Conflicts with the current state' },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof CATALOGUE;

/** A failure with a kind: transient or permanent, an enhanced status and a stable code. */
export class MailError extends Error {
  readonly code: ErrorCode | string;
  readonly status: string;
  readonly smtpCode: number;
  readonly disposition: Disposition;
  /** Seconds after which a retry makes sense (e.g. an upstream's Retry-After). */
  readonly retryAfter?: number;

  constructor(
    code: ErrorCode | string,
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
export function mailError(
  code: ErrorCode,
  detail?: string,
  extra: { cause?: unknown; retryAfter?: number; status?: string; smtpCode?: number } = {},
): MailError {
  const entry: CatalogueEntry = CATALOGUE[code];
  return new MailError(code, {
    status: extra.status ?? entry.status,
    smtpCode: extra.smtpCode ?? entry.smtp,
    message: detail ?? entry.text,
    cause: extra.cause,
    retryAfter: extra.retryAfter,
  });
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

/**
 * sysexits code for an error. Transient is always EX_TEMPFAIL so the MTA defers; never 1,
 * which Postfix would treat as a bounce with no reason.
 */
export function toSysexit(err: unknown): number {
  const e = asMailError(err);
  if (e.transient) return SYSEXITS.TEMPFAIL;
  if (e.code === 'USAGE') return SYSEXITS.USAGE;
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
  switch (e.code) {
    case 'UNAUTHORISED':
      return 401;
    case 'FORBIDDEN':
      return 403;
    case 'TOO_MANY_REQUESTS':
      return 429;
    case 'NOT_FOUND':
      return 404;
    case 'INVALID_REQUEST':
      return 400;
    case 'UNSUPPORTED_MEDIA_TYPE':
      return 415;
    case 'CONFLICT':
      return 409;
    case 'TOO_LARGE':
      return 413;
    case 'STORE_FULL':
      return 507;
  }
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
    type: `urn:postroom:error:${String(e.code).toLowerCase()}`,
    title: String(e.code),
    status: toHttpStatus(e),
    detail: e.code === 'INTERNAL' ? CATALOGUE.INTERNAL.text : e.message,
    code: e.code,
    enhancedStatus: e.status,
    disposition: e.disposition,
    ...(instance ? { instance } : {}),
  };
}
