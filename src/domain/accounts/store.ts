import { readProperties, type Properties } from './model.js';
import { newId } from '../../core/ids.js';
import type { Db } from '../../store/db.js';
import type { MailAccountsTable, MailFoldersTable, MailProfilesTable } from '../../store/schema.js';
import type { MailOptions } from './config.js';
import type { SecretBox } from './secret-box.js';

/**
 * The mail-account repository: profiles (server settings), accounts (credentials), folders
 * (what to do with their mail, and how the last poll went). Both stores, plain Kysely.
 */

/**
 * imap or pop3, or a value of the operator's (mail.model.profiles.values.protocol), which no
 * code of Postroom's speaks: check with `builtInProtocol` before connecting.
 */
export type Protocol = 'imap' | 'pop3' | (string & {});

/** Whether Postroom can fetch through a profile of this protocol. */
export function builtInProtocol(p: Protocol): p is 'imap' | 'pop3' {
  return p === 'imap' || p === 'pop3';
}
export type TlsMode = 'none' | 'starttls' | 'tls';

export interface MailProfile {
  id: string;
  name: string;
  protocol: Protocol;
  host: string;
  port: number;
  tls: TlsMode;
  smtp: { host: string; port: number; tls: TlsMode } | null;
  /** The operator's own properties (mail.model). */
  properties: Properties;
  options: MailOptions;
  createdAt: string;
  updatedAt: string;
}

export interface MailAccount {
  id: string;
  profile: string;
  name: string;
  address: string | null;
  username: string;
  /** The operator's own properties (mail.model). */
  properties: Properties;
  options: MailOptions;
  createdAt: string;
  updatedAt: string;
}

export interface FolderHealth {
  lastOkAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  consecutiveFailures: number;
}

export interface MailFolder {
  id: string;
  account: string;
  path: string;
  specialUse: string | null;
  enabled: boolean;
  deleteOnServer: boolean;
  moveOnSuccess: string | null;
  moveOnFailure: string | null;
  route: string | null;
  recipient: string | null;
  /** The operator's own properties (mail.model). */
  properties: Properties;
  options: MailOptions;
  uidValidity: string | null;
  lastUid: number;
  fetched: number;
  health: FolderHealth;
  createdAt: string;
  updatedAt: string;
}

/** Everything a watcher needs for one folder, password decrypted. */
export interface FolderJob {
  folder: MailFolder;
  account: MailAccount;
  profile: MailProfile;
  password: string;
}

const now = () => new Date().toISOString();
const json = (s: string) => JSON.parse(s) as MailOptions;

function profileOf(r: MailProfilesTable): MailProfile {
  return {
    id: r.id,
    name: r.name,
    protocol: r.protocol as Protocol,
    host: r.host,
    port: Number(r.port),
    tls: r.tls as TlsMode,
    smtp: r.smtp_host ? { host: r.smtp_host, port: Number(r.smtp_port ?? 25), tls: (r.smtp_tls ?? 'starttls') as TlsMode } : null,
    options: json(r.options),
    properties: readProperties(r.properties),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function accountOf(r: MailAccountsTable): MailAccount {
  return {
    id: r.id,
    profile: r.profile,
    name: r.name,
    address: r.address,
    username: r.username,
    options: json(r.options),
    properties: readProperties(r.properties),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** A folders row as the MailFolder contract. */
export function folderOf(r: MailFoldersTable): MailFolder {
  return {
    id: r.id,
    account: r.account,
    path: r.path,
    specialUse: r.special_use,
    enabled: !!Number(r.enabled),
    deleteOnServer: !!Number(r.delete_on_server),
    moveOnSuccess: r.move_on_success,
    moveOnFailure: r.move_on_failure,
    route: r.route,
    recipient: r.recipient,
    options: json(r.options),
    properties: readProperties(r.properties),
    uidValidity: r.uidvalidity,
    lastUid: Number(r.last_uid),
    fetched: Number(r.fetched),
    health: {
      lastOkAt: r.last_ok_at,
      lastError: r.last_error,
      lastErrorAt: r.last_error_at,
      consecutiveFailures: Number(r.consecutive_failures),
    },
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export interface ProfileInput {
  name: string;
  protocol: Protocol;
  host: string;
  port: number;
  tls: TlsMode;
  smtp?: { host: string; port: number; tls: TlsMode } | null;
  properties?: Properties;
  options?: MailOptions;
}

/** Create a profile. */
export async function createProfile(db: Db, p: ProfileInput): Promise<MailProfile> {
  const t = now();
  const row: MailProfilesTable = {
    id: newId('mp_'),
    name: p.name,
    protocol: p.protocol,
    host: p.host,
    port: p.port,
    tls: p.tls,
    smtp_host: p.smtp?.host ?? null,
    smtp_port: p.smtp?.port ?? null,
    smtp_tls: p.smtp?.tls ?? null,
    options: JSON.stringify(p.options ?? {}),
    properties: p.properties ? JSON.stringify(p.properties) : null,
    created_at: t,
    updated_at: t,
  };
  await db.kysely.insertInto('mail_profiles').values(row).execute();
  return profileOf(row);
}

/** Change a profile (fields given replace the stored ones). */
export async function updateProfile(db: Db, id: string, p: Partial<ProfileInput>): Promise<MailProfile | undefined> {
  const set: Partial<MailProfilesTable> = { updated_at: now() };
  if (p.name !== undefined) set.name = p.name;
  if (p.protocol !== undefined) set.protocol = p.protocol;
  if (p.host !== undefined) set.host = p.host;
  if (p.port !== undefined) set.port = p.port;
  if (p.tls !== undefined) set.tls = p.tls;
  if (p.smtp !== undefined) Object.assign(set, { smtp_host: p.smtp?.host ?? null, smtp_port: p.smtp?.port ?? null, smtp_tls: p.smtp?.tls ?? null });
  if (p.options !== undefined) set.options = JSON.stringify(p.options);
  if (p.properties !== undefined) set.properties = JSON.stringify(p.properties);
  await db.kysely.updateTable('mail_profiles').set(set).where('id', '=', id).execute();
  // Server settings changed: the folders' watchers restart (the scheduler compares updated_at).
  await db.kysely
    .updateTable('mail_folders')
    .set({ updated_at: set.updated_at! })
    .where('account', 'in', (eb) => eb.selectFrom('mail_accounts').select('id').where('profile', '=', id))
    .execute();
  return getProfile(db, id);
}

export async function getProfile(db: Db, id: string): Promise<MailProfile | undefined> {
  const r = await db.kysely.selectFrom('mail_profiles').selectAll().where('id', '=', id).executeTakeFirst();
  return r && profileOf(r);
}

export async function listProfiles(db: Db): Promise<MailProfile[]> {
  return (await db.kysely.selectFrom('mail_profiles').selectAll().orderBy('id').execute()).map(profileOf);
}

/** Delete a profile; false when accounts still use it. */
export async function deleteProfile(db: Db, id: string): Promise<boolean> {
  const used = await db.kysely.selectFrom('mail_accounts').select('id').where('profile', '=', id).executeTakeFirst();
  if (used) return false;
  await db.kysely.deleteFrom('mail_profiles').where('id', '=', id).execute();
  return true;
}

export interface AccountInput {
  profile: string;
  name: string;
  address?: string | null;
  username: string;
  password: string;
  properties?: Properties;
  options?: MailOptions;
}

/** Create an account; the password is sealed with `box`, bound to the new account's id. */
export async function createAccount(db: Db, box: SecretBox, a: AccountInput): Promise<MailAccount> {
  const t = now();
  const id = newId('ma_');
  const row: MailAccountsTable = {
    id,
    profile: a.profile,
    name: a.name,
    address: a.address ?? null,
    username: a.username,
    password_enc: box.seal(a.password, id),
    options: JSON.stringify(a.options ?? {}),
    properties: a.properties ? JSON.stringify(a.properties) : null,
    created_at: t,
    updated_at: t,
  };
  await db.kysely.insertInto('mail_accounts').values(row).execute();
  return accountOf(row);
}

/** Change an account (a new password is sealed again). */
export async function updateAccount(db: Db, box: SecretBox, id: string, a: Partial<AccountInput>): Promise<MailAccount | undefined> {
  const set: Partial<MailAccountsTable> = { updated_at: now() };
  if (a.profile !== undefined) set.profile = a.profile;
  if (a.name !== undefined) set.name = a.name;
  if (a.address !== undefined) set.address = a.address;
  if (a.username !== undefined) set.username = a.username;
  if (a.password !== undefined) set.password_enc = box.seal(a.password, id);
  if (a.options !== undefined) set.options = JSON.stringify(a.options);
  if (a.properties !== undefined) set.properties = JSON.stringify(a.properties);
  await db.kysely.updateTable('mail_accounts').set(set).where('id', '=', id).execute();
  // Credentials changed: the folders' watchers restart (they compare updated_at).
  await db.kysely.updateTable('mail_folders').set({ updated_at: set.updated_at! }).where('account', '=', id).execute();
  return getAccount(db, id);
}

export async function getAccount(db: Db, id: string): Promise<MailAccount | undefined> {
  const r = await db.kysely.selectFrom('mail_accounts').selectAll().where('id', '=', id).executeTakeFirst();
  return r && accountOf(r);
}

export async function listAccounts(db: Db, profile?: string): Promise<MailAccount[]> {
  let q = db.kysely.selectFrom('mail_accounts').selectAll().orderBy('id');
  if (profile) q = q.where('profile', '=', profile);
  return (await q.execute()).map(accountOf);
}

/** Delete an account and its folders (kept messages stay). */
export async function deleteAccount(db: Db, id: string): Promise<void> {
  await db.kysely.transaction().execute(async (trx) => {
    await trx.deleteFrom('pop3_seen').where('folder', 'in', (eb) => eb.selectFrom('mail_folders').select('id').where('account', '=', id)).execute();
    await trx.deleteFrom('mail_folders').where('account', '=', id).execute();
    await trx.deleteFrom('mail_accounts').where('id', '=', id).execute();
  });
}

/** The account's password in clear, for logging in. */
export async function accountPassword(db: Db, box: SecretBox, id: string): Promise<string> {
  const r = await db.kysely.selectFrom('mail_accounts').select('password_enc').where('id', '=', id).executeTakeFirstOrThrow();
  return box.open(r.password_enc, id);
}

/** Record the folders a server lists: new ones are added (disabled), known ones keep their settings. */
export async function upsertFolders(db: Db, account: string, found: { path: string; specialUse?: string | null }[]): Promise<MailFolder[]> {
  const t = now();
  const known = new Set((await db.kysely.selectFrom('mail_folders').select('path').where('account', '=', account).execute()).map((r) => r.path));
  const rows: MailFoldersTable[] = found
    .filter((f) => !known.has(f.path))
    .map((f) => ({
      id: newId('mf_'),
      account,
      path: f.path,
      special_use: f.specialUse ?? null,
      enabled: 0,
      delete_on_server: 0,
      move_on_success: null,
      move_on_failure: null,
      route: null,
      recipient: null,
      options: '{}',
      uidvalidity: null,
      last_uid: 0,
      fetched: 0,
      last_ok_at: null,
      last_error: null,
      last_error_at: null,
      consecutive_failures: 0,
      created_at: t,
      updated_at: t,
    }));
  if (rows.length) await db.kysely.insertInto('mail_folders').values(rows).onConflict((oc) => oc.columns(['account', 'path']).doNothing()).execute();
  return listFolders(db, { account });
}

export async function listFolders(db: Db, f: { account?: string; enabled?: boolean } = {}): Promise<MailFolder[]> {
  let q = db.kysely.selectFrom('mail_folders').selectAll().orderBy('id');
  if (f.account) q = q.where('account', '=', f.account);
  if (f.enabled !== undefined) q = q.where('enabled', '=', f.enabled ? 1 : 0);
  return (await q.execute()).map(folderOf);
}

export async function getFolder(db: Db, id: string): Promise<MailFolder | undefined> {
  const r = await db.kysely.selectFrom('mail_folders').selectAll().where('id', '=', id).executeTakeFirst();
  return r && folderOf(r);
}

export interface FolderSettings {
  enabled?: boolean;
  deleteOnServer?: boolean;
  moveOnSuccess?: string | null;
  moveOnFailure?: string | null;
  route?: string | null;
  recipient?: string | null;
  properties?: Properties;
  options?: MailOptions;
}

/** Change what a folder does with its mail. */
export async function updateFolder(db: Db, id: string, s: FolderSettings): Promise<MailFolder | undefined> {
  const set: Partial<MailFoldersTable> = { updated_at: now() };
  if (s.enabled !== undefined) set.enabled = s.enabled ? 1 : 0;
  if (s.deleteOnServer !== undefined) set.delete_on_server = s.deleteOnServer ? 1 : 0;
  if (s.moveOnSuccess !== undefined) set.move_on_success = s.moveOnSuccess;
  if (s.moveOnFailure !== undefined) set.move_on_failure = s.moveOnFailure;
  if (s.route !== undefined) set.route = s.route;
  if (s.recipient !== undefined) set.recipient = s.recipient;
  if (s.options !== undefined) set.options = JSON.stringify(s.options);
  if (s.properties !== undefined) set.properties = JSON.stringify(s.properties);
  await db.kysely.updateTable('mail_folders').set(set).where('id', '=', id).execute();
  return getFolder(db, id);
}

/** Folder, account, profile and password for a watcher; undefined if the folder is gone. */
export async function loadFolderJob(db: Db, box: SecretBox, folderId: string): Promise<FolderJob | undefined> {
  const folder = await getFolder(db, folderId);
  if (!folder) return undefined;
  const account = await getAccount(db, folder.account);
  if (!account) return undefined;
  const profile = await getProfile(db, account.profile);
  if (!profile) return undefined;
  return { folder, account, profile, password: await accountPassword(db, box, account.id) };
}

/** The envelope recipient fetched mail is given: the folder's, else the account's address, else its user name. */
export function routingRecipient(job: { folder: Pick<MailFolder, 'recipient'>; account: Pick<MailAccount, 'address' | 'username'> }): string {
  return job.folder.recipient ?? job.account.address ?? job.account.username;
}
