import { createHash } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { mailError, MailError } from '../../core/errors.js';
import type { TlsMode } from '../../domain/accounts/store.js';

/**
 * A small POP3 client (RFC 1939, CAPA from RFC 2449, STLS from RFC 2595). Written here because
 * the npm clients read a whole RETR into a JavaScript string (bytes outside UTF-8 are lost)
 * and have no APOP. It streams RETR with dot-unstuffing, so a message is kept byte for byte.
 */

export interface Pop3Settings {
  host: string;
  port: number;
  tls: TlsMode;
  username: string;
  password: string;
  tlsVerify?: boolean;
  /** Log in with APOP (needs the timestamp in the server greeting). */
  apop?: boolean;
  /** Socket inactivity that counts as a dead server (default 60 s). */
  timeout?: number;
}

/** Longest line we wait for: RFC 1939 §3 allows 512 octets for responses; message lines are bounded by RFC 5322's 998, with slack for broken mail. */
const MAX_LINE = 1024 * 1024;
/** RETR bytes are handed on in chunks of about this size rather than line by line. */
const CHUNK = 64 * 1024;

/** Reads CRLF-terminated lines from a socket, pausing it while nobody reads. */
class LineReader {
  private buf = Buffer.alloc(0);
  private pos = 0;
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = this.pos ? Buffer.concat([this.buf.subarray(this.pos), d]) : Buffer.concat([this.buf, d]);
      this.pos = 0;
      if (this.buf.length > 4 * CHUNK) socket.pause();
      this.notify();
    });
    socket.on('end', () => ((this.ended = true), this.notify()));
    socket.on('close', () => ((this.ended = true), this.notify()));
    socket.on('error', (err) => ((this.error = err), this.notify()));
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** The next line including its line end; throws when the connection ends first. */
  async line(): Promise<Buffer> {
    for (;;) {
      const nl = this.buf.indexOf(0x0a, this.pos);
      if (nl >= 0) {
        const line = this.buf.subarray(this.pos, nl + 1);
        this.pos = nl + 1;
        if (this.buf.length - this.pos < CHUNK) this.socket.resume();
        return line;
      }
      if (this.buf.length - this.pos > MAX_LINE) throw mailError('TARGET_CONNECT', 'POP3 server sent a line longer than 1 MiB');
      if (this.error) throw this.error;
      if (this.ended) throw new Error('connection closed by the POP3 server');
      this.socket.resume();
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

/** A connected, logged-in POP3 session. */
export class Pop3Session {
  private reader: LineReader;
  /** Capabilities from CAPA (upper case), empty when the server has no CAPA. */
  capabilities = new Set<string>();

  private constructor(
    private socket: net.Socket,
    private readonly host: string,
  ) {
    this.reader = new LineReader(socket);
  }

  /** Connect, upgrade per `tls`, log in (APOP or USER/PASS). Throws MailError (AUTH_FAILED on a refused login). */
  static async open(s: Pop3Settings): Promise<Pop3Session> {
    const timeout = s.timeout ?? 60_000;
    const tlsOpts = { servername: net.isIP(s.host) ? undefined : s.host, rejectUnauthorized: s.tlsVerify ?? true };
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const sock = s.tls === 'tls' ? tls.connect({ host: s.host, port: s.port, ...tlsOpts }) : net.connect({ host: s.host, port: s.port });
      sock.setTimeout(timeout, () => sock.destroy(new Error(`no answer for ${timeout} ms`)));
      sock.once(s.tls === 'tls' ? 'secureConnect' : 'connect', () => resolve(sock));
      sock.once('error', reject);
    }).catch((err: Error) => {
      throw mailError('TARGET_CONNECT', `${s.host}:${s.port}: ${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`.trim(), { cause: err });
    });
    const session = new Pop3Session(socket, s.host);
    try {
      const greeting = await session.status();
      await session.capa();
      if (s.tls === 'starttls') {
        // RFC 2595 §4: STLS, then CAPA again (what was said in clear may have been tampered with).
        if (!session.capabilities.has('STLS')) throw mailError('TARGET_CONNECT', `${s.host}: the server does not offer STLS`);
        await session.command('STLS');
        // From here the TLS socket reads the connection; the cleartext reader must not.
        socket.removeAllListeners('data');
        const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
          const t = tls.connect({ socket, ...tlsOpts }, () => resolve(t));
          t.once('error', reject);
        });
        secure.setTimeout(timeout, () => secure.destroy(new Error(`no answer for ${timeout} ms`)));
        session.socket = secure;
        session.reader = new LineReader(secure);
        await session.capa();
      }
      if (s.apop) {
        // RFC 1939 §7: MD5 of the greeting's timestamp and the shared secret.
        const stamp = /<[^<>]+>/.exec(greeting)?.[0];
        if (!stamp) throw mailError('AUTH_FAILED', `${s.host}: APOP asked for, but the server greeting has no timestamp (APOP not offered)`);
        const digest = createHash('md5').update(stamp + s.password, 'utf8').digest('hex');
        await session.command(`APOP ${s.username} ${digest}`, true);
      } else {
        await session.command(`USER ${s.username}`, true);
        await session.command(`PASS ${s.password}`, true);
      }
      return session;
    } catch (err) {
      socket.destroy();
      throw err instanceof MailError ? err : mailError('TARGET_CONNECT', `${s.host}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Read one status line: the text after +OK, or throw on -ERR. */
  private async status(auth = false): Promise<string> {
    const line = (await this.reader.line()).toString('latin1').replace(/\r?\n$/, '');
    if (line.startsWith('+OK')) return line.slice(3).trim();
    const text = line.replace(/^-ERR\s*/, '');
    if (auth) throw mailError('AUTH_FAILED', `${this.host}: login refused: ${text}`);
    throw mailError('TARGET_TEMPFAIL', `${this.host} said: ${line}`);
  }

  /** Send a command (no CR/LF may be smuggled into it) and read its status line. */
  async command(cmd: string, auth = false): Promise<string> {
    await this.drain();
    if (/[\r\n]/.test(cmd)) throw mailError('INVALID_REQUEST', 'CR or LF in a POP3 argument');
    this.socket.write(`${cmd}\r\n`);
    return this.status(auth);
  }

  /** A multi-line answer has been started and not read to its end. */
  private unfinished = false;

  /** The lines of a multi-line answer, dot-unstuffed, line ends kept (RFC 1939 §3). */
  private async *multiline(): AsyncGenerator<Buffer> {
    this.unfinished = true;
    for (;;) {
      const line = await this.reader.line();
      if (line[0] === 0x2e) {
        if (line.length <= 3 && (line.equals(Buffer.from('.\r\n')) || line.equals(Buffer.from('.\n')))) {
          this.unfinished = false;
          return;
        }
        yield line.subarray(1);
      } else yield line;
    }
  }

  /** Read what is left of a multi-line answer its reader gave up on (a refused RETR), so the next command lines up. */
  async drain(): Promise<void> {
    if (!this.unfinished) return;
    for await (const _ of this.multiline());
  }

  private async capa(): Promise<void> {
    this.socket.write('CAPA\r\n');
    try {
      await this.status();
    } catch {
      this.capabilities = new Set();
      return;
    }
    const caps = new Set<string>();
    for await (const l of this.multiline()) caps.add(l.toString('latin1').trim().split(/\s+/)[0].toUpperCase());
    this.capabilities = caps;
  }

  /** UIDL: message number → unique id (RFC 1939 §7). */
  async uidl(): Promise<Map<number, string>> {
    await this.command('UIDL');
    const out = new Map<number, string>();
    for await (const l of this.multiline()) {
      const [n, id] = l.toString('latin1').trim().split(/\s+/);
      if (n && id) out.set(Number(n), id);
    }
    return out;
  }

  /** LIST: message number → size in octets. */
  async list(): Promise<Map<number, number>> {
    await this.command('LIST');
    const out = new Map<number, number>();
    for await (const l of this.multiline()) {
      const [n, size] = l.toString('latin1').trim().split(/\s+/);
      if (n && size) out.set(Number(n), Number(size));
    }
    return out;
  }

  /** RETR n: the message bytes as sent (dot-unstuffed), in chunks. Read it to the end before the next command. */
  async retr(n: number): Promise<AsyncIterable<Uint8Array>> {
    await this.command(`RETR ${n}`);
    const lines = this.multiline();
    return (async function* () {
      let parts: Buffer[] = [];
      let size = 0;
      for await (const l of lines) {
        parts.push(l);
        size += l.length;
        if (size >= CHUNK) {
          yield Buffer.concat(parts);
          parts = [];
          size = 0;
        }
      }
      if (size) yield Buffer.concat(parts);
    })();
  }

  /** Mark message n deleted; the server removes it at QUIT (RFC 1939 §6), not before. */
  async dele(n: number): Promise<void> {
    await this.command(`DELE ${n}`);
  }

  /** QUIT: commit deletions and close. */
  async quit(): Promise<void> {
    try {
      await this.command('QUIT');
    } finally {
      this.socket.end();
    }
  }

  /** Drop the connection without QUIT: the server forgets the deletions of this session. */
  close(): void {
    this.socket.destroy();
  }
}
