import { execFile } from 'node:child_process';
import net from 'node:net';

/** What one swaks run showed: its exit code, full transcript, and the server's reply lines. */
export interface SwaksRun {
  code: number;
  out: string;
  /** Server lines as swaks printed them (`<-` normal, `<~` TLS, `<**` error), prefix removed. */
  replies: string[];
}

/** Run swaks against 127.0.0.1:port with argv (never a shell string). Resolves even when swaks fails. */
export function swaks(port: number, args: string[], timeoutMs = 30_000): Promise<SwaksRun> {
  const argv = ['--server', `127.0.0.1:${port}`, '--timeout', '10', ...args];
  return new Promise((resolve) => {
    execFile('swaks', argv, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const out = `${stdout}${stderr}`;
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      const replies = out
        .split('\n')
        .filter((l) => /^<[-~*]+ /.test(l))
        .map((l) => l.replace(/^<[-~*]+\s+/, ''));
      resolve({ code, out, replies });
    });
  });
}

/** A raw SMTP client for what swaks cannot do: send lines, read whole replies. */
export class RawSmtp {
  private buf = '';
  private waiters: Array<() => void> = [];
  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
      this.waiters.splice(0).forEach((w) => w());
    });
    socket.on('close', () => this.waiters.splice(0).forEach((w) => w()));
  }

  /** Connect to 127.0.0.1:port. */
  static connect(port: number): Promise<RawSmtp> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawSmtp(s)));
      s.once('error', reject);
    });
  }

  /** The next complete reply (all lines of a multi-line one), e.g. '250 2.1.0 Accepted'. */
  async reply(timeoutMs = 10_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m[0].length);
        return m[0].replace(/\r?\n$/, '');
      }
      if (this.socket.destroyed || this.socket.readableEnded) throw new Error(`connection closed; unread: ${JSON.stringify(this.buf)}`);
      if (Date.now() > end) throw new Error(`no reply within ${timeoutMs} ms; unread: ${JSON.stringify(this.buf)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  /** Write raw bytes (no CRLF added). */
  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Send one command line and read its reply. */
  async cmd(line: string): Promise<string> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** Whether the server has closed the connection (within `ms`). */
  async closedWithin(ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (this.socket.readableEnded || this.socket.destroyed) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  }

  close(): void {
    this.socket.destroy();
  }
}
