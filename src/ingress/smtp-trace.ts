/**
 * What a client sent, for `smtp.logReceivedData` (the fax gateway's `log_rcv_data`): its command
 * lines and the first bytes of each message, logged with the transaction they belong to.
 *
 * Credentials never reach it. RFC 4954 carries them in the AUTH command's initial response
 * (`AUTH PLAIN <base64 of authzid NUL user NUL password>`, `AUTH LOGIN <base64 user>`) and in
 * every continuation line of the exchange (LOGIN's user name and password, a PLAIN response
 * sent after the 334): each is base64 of the secret, as good as the secret itself. So an AUTH
 * line keeps its mechanism only, and any line that answers a 334 challenge is replaced whole.
 */
export const REDACTED = '****';

const MECHANISMS = /^(?:PLAIN|LOGIN|CRAM-MD5|DIGEST-MD5|XOAUTH2|OAUTHBEARER|GSSAPI|NTLM|EXTERNAL|ANONYMOUS|SCRAM-SHA-(?:1|256)(?:-PLUS)?)$/i;

/**
 * The line as it may be logged. `inSasl`: the server is waiting for a continuation line of an
 * AUTH exchange (smtp-server's `_nextHandler`), so the line is a credential whatever it holds.
 */
export function redactCommand(line: string, inSasl: boolean): string {
  if (inSasl) return REDACTED;
  // Over-redacting is harmless: any line starting with AUTH (AUTHX, lower case, leading
  // blanks) is treated as one.
  if (!/^\s*AUTH/i.test(line)) return line;
  const [, mech, ...rest] = line.trim().split(/\s+/);
  if (!mech) return 'AUTH';
  // The mechanism is kept only when it is a registered one: a broken client may send its
  // base64 credentials in that place, and they look like a mechanism name (RFC 4422 §3.1).
  if (!MECHANISMS.test(mech)) return `AUTH ${REDACTED}`;
  return rest.length ? `AUTH ${mech.toUpperCase()} ${REDACTED}` : `AUTH ${mech.toUpperCase()}`;
}

/** One session's received lines and the current message's first bytes, until they are logged. */
export class ReceivedTrace {
  private lines: string[] = [];
  private chunks: Buffer[] = [];
  private kept = 0;
  private total = 0;

  constructor(private readonly maxBytes: number) {}

  command(line: string, inSasl: boolean): void {
    // A command line is at most a few hundred bytes (smtp-server ends longer ones); the cap
    // is for a client that sends thousands of them in one session before any transaction.
    if (this.lines.length < 1000) this.lines.push(redactCommand(line, inSasl));
  }

  /** A chunk of DATA, after dot-unstuffing (what is kept). */
  data(chunk: Buffer): void {
    this.total += chunk.length;
    if (this.kept >= this.maxBytes) return;
    const part = chunk.subarray(0, this.maxBytes - this.kept);
    this.chunks.push(Buffer.from(part));
    this.kept += part.length;
  }

  /** Nothing to log (beyond the last line, with `holdLast`). */
  empty(holdLast = false): boolean {
    return this.lines.length <= (holdLast ? 1 : 0) && this.total === 0;
  }

  /**
   * The fields of one log line, and a fresh start for the next transaction; `holdLast` keeps the
   * last command line for the next one.
   */
  take(holdLast = false): { dialogue: string[]; data?: string; dataBytes?: number; dataTruncated?: boolean } {
    const held = holdLast ? this.lines.splice(-1) : [];
    const out = {
      dialogue: this.lines,
      ...(this.total
        ? {
            // Decoded as UTF-8 (invalid bytes as U+FFFD): the log is JSON text, read by people.
            data: Buffer.concat(this.chunks).toString('utf8'),
            dataBytes: this.total,
            ...(this.total > this.kept ? { dataTruncated: true } : {}),
          }
        : {}),
    };
    this.lines = held;
    this.chunks = [];
    this.kept = 0;
    this.total = 0;
    return out;
  }
}
