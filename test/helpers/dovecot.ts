import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { freePort, tempDir, waitFor } from './env.js';

/**
 * A throw-away Dovecot (IMAP with IDLE, POP3) of our own: temp dir, free high ports, one user,
 * run in the foreground as our child so stopping it is killing it. Follows
 * shared/peers/dovecot-instance.sh. Login processes refuse root, so mail belongs to `nobody`.
 * The passdb keeps the password in clear ({PLAIN}), which APOP needs (RFC 1939 §7).
 */
export interface Dovecot {
  dir: string;
  host: string;
  imapPort: number;
  pop3Port: number;
  /** With `tls`: IMAPS and POP3S ports (TLS from the first byte); STARTTLS/STLS on the others. */
  imapsPort?: number;
  pop3sPort?: number;
  user: string;
  pass: string;
  /** A connected imapflow client as the user (logout when done). */
  client(): Promise<ImapFlow>;
  /** APPEND messages to a folder (created if missing), over one connection. */
  append(folder: string, messages: (string | Buffer)[]): Promise<void>;
  /** Message-IDs (or UIDs for messages without one) in a folder; [] when it does not exist. */
  messageIds(folder: string): Promise<string[]>;
  /** Stop the server and remove its directory. */
  stop(): Promise<void>;
}

function conf(dir: string, imap: number, pop3: number, apop: boolean, tls?: { imaps: number; pop3s: number }): string {
  return `protocols = imap pop3
listen = 127.0.0.1
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
${tls ? `ssl = yes\nssl_cert = <${dir}/cert.pem\nssl_key = <${dir}/key.pem` : 'ssl = no'}
disable_plaintext_auth = no
auth_mechanisms = plain login${apop ? ' apop' : ''}
mail_location = maildir:~/Maildir
mail_fsync = never
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = ${dir}/passwd
}
userdb {
  driver = passwd-file
  args = ${dir}/passwd
}
service imap-login {
  inet_listener imap {
    port = ${imap}
  }
  inet_listener imaps {
    port = ${tls?.imaps ?? 0}
  }
}
service pop3-login {
  inet_listener pop3 {
    port = ${pop3}
  }
  inet_listener pop3s {
    port = ${tls?.pop3s ?? 0}
  }
}
`;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** Start a Dovecot; `apop` offers APOP (the greeting then carries a timestamp). */
export async function startDovecot(opts: { apop?: boolean; user?: string; pass?: string; tls?: boolean } = {}): Promise<Dovecot> {
  const tmp = tempDir('dovecot-');
  const dir = tmp.dir;
  const user = opts.user ?? 'alice';
  const pass = opts.pass ?? 'secret-pw';
  const imapPort = await freePort();
  const pop3Port = await freePort();
  for (const d of ['run', 'state', 'mail']) mkdirSync(path.join(dir, d), { recursive: true });
  const uid = Number(execFileSync('id', ['-u', 'nobody']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'nobody']).toString().trim());
  writeFileSync(path.join(dir, 'passwd'), `${user}:{PLAIN}${pass}:${uid}:${gid}::${dir}/mail/${user}\n`);
  chownSync(path.join(dir, 'mail'), uid, gid);
  chmodSync(dir, 0o755);
  let tls: { imaps: number; pop3s: number } | undefined;
  if (opts.tls) {
    // A throw-away self-signed certificate: clients must either skip verification or refuse it.
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    tls = { imaps: await freePort(), pop3s: await freePort() };
  }
  writeFileSync(path.join(dir, 'dovecot.conf'), conf(dir, imapPort, pop3Port, !!opts.apop, tls));
  const child: ChildProcess = spawn('dovecot', ['-F', '-c', path.join(dir, 'dovecot.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));
  await waitFor(async () => {
    if (exited) throw new Error(`dovecot exited: ${err}`);
    return (await canConnect(imapPort)) && (await canConnect(pop3Port)) && (!tls || (await canConnect(tls.imaps)));
  }, 'dovecot to listen', 15_000);

  const client = async () => {
    const c = new ImapFlow({ host: '127.0.0.1', port: imapPort, secure: false, doSTARTTLS: false, auth: { user, pass }, logger: false });
    c.on('error', () => {});
    await c.connect();
    return c;
  };
  return {
    dir,
    host: '127.0.0.1',
    imapPort,
    pop3Port,
    imapsPort: tls?.imaps,
    pop3sPort: tls?.pop3s,
    user,
    pass,
    client,
    async append(folder, messages) {
      const c = await client();
      try {
        if (folder !== 'INBOX') await c.mailboxCreate(folder).catch(() => {});
        for (const m of messages) await c.append(folder, typeof m === 'string' ? Buffer.from(m) : m);
      } finally {
        await c.logout().catch(() => c.close());
      }
    },
    async messageIds(folder) {
      const c = await client();
      try {
        const st = await c.status(folder, { messages: true }).catch(() => false as const);
        if (!st || !st.messages) return [];
        await c.mailboxOpen(folder, { readOnly: true });
        const out: string[] = [];
        for await (const m of c.fetch('1:*', { uid: true, envelope: true })) out.push(m.envelope?.messageId ?? `uid:${m.uid}`);
        return out;
      } finally {
        await c.logout().catch(() => c.close());
      }
    },
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        await new Promise((r) => {
          if (exited) return r(undefined);
          child.once('exit', r);
          setTimeout(() => child.kill('SIGKILL'), 3000).unref();
        });
      }
      tmp.cleanup();
    },
  };
}

/** A small RFC 5322 message with a Message-ID. */
export function testMessage(n: number | string, opts: { subject?: string; body?: string; returnPath?: string; messageId?: string | null } = {}): string {
  const lines = [
    ...(opts.returnPath !== undefined ? [`Return-Path: <${opts.returnPath}>`] : []),
    'From: Sender <sender@example.org>',
    'To: alice@example.org',
    `Subject: ${opts.subject ?? `message ${n}`}`,
    ...(opts.messageId === null ? [] : [`Message-ID: ${opts.messageId ?? `<msg-${n}@test.example>`}`]),
    'Date: Sat, 21 Nov 2026 06:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    opts.body ?? `body of message ${n}`,
    '',
  ];
  return lines.join('\r\n');
}
