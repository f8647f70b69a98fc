import type { ImapFlow } from 'imapflow';
import { mailError, MailError } from '../../core/errors.js';
import type { TlsMode } from '../../domain/accounts/store.js';
import { imapFailure } from '../../net/remote-answer.js';

/** How to reach and log in to one IMAP mailbox. */
export interface ImapSettings {
  host: string;
  port: number;
  tls: TlsMode;
  username: string;
  password: string;
  /** Check the server certificate (default true). */
  tlsVerify?: boolean;
  /** Socket inactivity before the connection counts as dead (default 5 min; IDLE is renewed before). */
  socketTimeout?: number;
}

/**
 * An imapflow client for these settings, not yet connected; logging off (failures come back as
 * errors). imapflow is loaded here, on first use: a serve without mail accounts never needs it.
 */
export async function imapClient(s: ImapSettings): Promise<ImapFlow> {
  const { ImapFlow } = await import('imapflow');
  return new ImapFlow({
    host: s.host,
    port: s.port,
    // tls: TLS from the first byte (993); starttls: must upgrade, or the login never happens
    // (a stripped STARTTLS capability must not send the password in clear); none: cleartext.
    secure: s.tls === 'tls',
    doSTARTTLS: s.tls === 'starttls' ? true : s.tls === 'none' ? false : undefined,
    tls: { rejectUnauthorized: s.tlsVerify ?? true },
    auth: { user: s.username, pass: s.password },
    logger: false,
    disableAutoIdle: true,
    // RFC 9051 §6.3.13: servers may drop an IDLE after 30 minutes; renew it well before.
    maxIdleTime: 5 * 60_000,
    connectionTimeout: 30_000,
    greetingTimeout: 30_000,
    socketTimeout: s.socketTimeout ?? 10 * 60_000,
    clientInfo: { name: 'Postroom' },
  });
}

/** A folder as the server lists it. */
export interface ListedFolder {
  path: string;
  specialUse: string | null;
}

/** Log in and list the account's folders (those that can be selected). */
export async function discoverImapFolders(s: ImapSettings): Promise<ListedFolder[]> {
  const client = await imapClient(s);
  client.on('error', () => {});
  try {
    await client.connect();
    const list = await client.list();
    return list
      .filter((m) => !m.flags.has('\\Noselect') && !m.flags.has('\\NonExistent'))
      .map((m) => ({ path: m.path, specialUse: m.specialUse ?? null }));
  } catch (err) {
    throw imapFailure(err, s.host);
  } finally {
    await client.logout().catch(() => client.close());
  }
}
