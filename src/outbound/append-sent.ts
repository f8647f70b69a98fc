import type { Readable } from 'node:stream';
import type { MailProfile } from '../domain/accounts/store.js';

/**
 * After a message went out, a copy into the account's Sent folder over IMAP (APPEND, flagged
 * \Seen: RFC 9051 §6.3.12), as the email processor service did when the profile named one.
 * The message is sent whatever happens here: a failure is reported on the receipt, never
 * retried as a send (that would send it twice).
 */
export async function appendToSent(
  profile: MailProfile,
  login: { username: string; password: string; tlsVerify: boolean },
  folder: string,
  raw: () => Promise<Readable>,
): Promise<string> {
  const { ImapFlow } = await import('imapflow');
  const client = new ImapFlow({
    host: profile.host,
    port: profile.port,
    secure: profile.tls === 'tls',
    doSTARTTLS: profile.tls === 'starttls' ? true : profile.tls === 'none' ? false : undefined,
    tls: { rejectUnauthorized: login.tlsVerify },
    auth: { user: login.username, pass: login.password },
    logger: false,
    disableAutoIdle: true,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    const chunks: Buffer[] = [];
    for await (const c of await raw()) chunks.push(Buffer.from(c as Buffer));
    const bytes = Buffer.concat(chunks);
    const append = () => client.append(folder, bytes, ['\\Seen']).catch(() => false as const);
    let done = await append();
    // RFC 9051 TRYCREATE: the folder does not exist yet; make it and try once more.
    if (!done) {
      await client.mailboxCreate(folder).catch(() => {});
      done = await client.append(folder, bytes, ['\\Seen']);
    }
    return done ? `appended to ${folder}` : `not appended to ${folder}: the server refused`;
  } catch (err) {
    return `not appended to ${folder}: ${(err as Error).message}`;
  } finally {
    await client.logout().catch(() => client.close());
  }
}
