import { asMailError } from '../../core/errors.js';
import { effectiveOptions } from '../../domain/accounts/config.js';
import type { SecretBox } from '../../domain/accounts/secret-box.js';
import { mailError } from '../../core/errors.js';
import { accountPassword, builtInProtocol, upsertFolders, type MailAccount, type MailFolder, type MailProfile } from '../../domain/accounts/store.js';
import type { Db } from '../../store/db.js';
import { discoverImapFolders, type ListedFolder } from './imap-session.js';
import { Pop3Session } from './pop3-client.js';

/** Ask the server which folders the account has: IMAP LIST, or INBOX after a POP3 login (POP3 has one mailbox). */
export async function listServerFolders(profile: MailProfile, account: MailAccount, password: string): Promise<ListedFolder[]> {
  const opts = effectiveOptions(profile.options, account.options);
  const base = { host: profile.host, port: profile.port, tls: profile.tls, username: account.username, password, tlsVerify: opts.tls_verify ?? true };
  // An operator's own protocol has no client here: nothing is asked, and no folder appears.
  if (!builtInProtocol(profile.protocol)) throw mailError('MISCONFIGURED', `protocol ${profile.protocol} is not one Postroom fetches through (imap, pop3)`);
  if (profile.protocol === 'imap') return discoverImapFolders(base);
  const session = await Pop3Session.open({ ...base, apop: opts.apop ?? false, timeout: 30_000 });
  await session.quit().catch(() => session.close());
  return [{ path: 'INBOX', specialUse: '\\Inbox' }];
}

/**
 * Discover an account's folders and record new ones (disabled until someone enables them;
 * known ones keep their settings). A server that cannot be asked is reported, not thrown:
 * the account exists either way and can be refreshed later.
 */
export async function discoverFolders(
  db: Db,
  box: SecretBox,
  profile: MailProfile,
  account: MailAccount,
): Promise<{ folders: MailFolder[]; discovery: { ok: boolean; error: string | null } }> {
  try {
    const found = await listServerFolders(profile, account, await accountPassword(db, box, account.id));
    return { folders: await upsertFolders(db, account.id, found), discovery: { ok: true, error: null } };
  } catch (err) {
    const e = asMailError(err);
    const error = e.code === 'INTERNAL' ? String((err as Error).message ?? err) : `${e.status} ${e.message}`;
    return { folders: await upsertFolders(db, account.id, []), discovery: { ok: false, error } };
  }
}
