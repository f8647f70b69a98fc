import { z } from 'zod';
import { mailOptionsSchema } from '../../domain/accounts/config.js';
import { enumValues, PropertiesInput, type MailModel } from '../../domain/accounts/model.js';
import type { MailAccount, MailFolder, MailProfile } from '../../domain/accounts/store.js';
import { Id } from '../schemas.js';

/** Request and response shapes of /api/v1/email (profiles, accounts, folders, outbound messages). */

/** The operator's own properties (declared in mail.model), as stored. */
export const PropertiesOut = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).describe('properties of your own (mail.model)');

const TlsMode = z.enum(['none', 'starttls', 'tls']).describe('none: cleartext; starttls: upgrade first (required); tls: TLS from the first byte');
const host = z.string().min(1).max(255);
const port = z.number().int().min(1).max(65535);

export const Smtp = z.strictObject({ host, port: port.default(587), tls: TlsMode.default('starttls') }).describe('where the accounts send (outbound)');

/** A profile's protocol: imap, pop3, and the operator's own (mail.model.profiles.values.protocol). */
const protocolOf = (model?: MailModel) =>
  z.enum(enumValues(model, 'profiles', 'protocol')).describe('imap or pop3; a value of mail.model.profiles.values.protocol is kept and shown, and nothing is fetched through it (its port must be given)');

/** The profile shapes of a server with `model` (its extra protocols); without one, the built-in ones. */
export function profileSchemas(model?: MailModel) {
  const ProfileCreate = z.strictObject({
    name: z.string().min(1).max(200),
    protocol: protocolOf(model),
    host,
    port: port.optional().describe('default 143/993 (IMAP) or 110/995 (POP3) by tls'),
    tls: TlsMode.default('tls'),
    smtp: Smtp.nullable().optional(),
    options: mailOptionsSchema.default({}),
    properties: PropertiesInput.optional(),
  });
  const Profile = ProfileOut.extend({ protocol: protocolOf(model) });
  return { ProfileCreate, ProfilePatch: ProfileCreate.partial(), Profile };
}

const ProfileOut = z.object({
  id: z.string(),
  name: z.string(),
  protocol: z.string(),
  host: z.string(),
  port: z.number().int(),
  tls: TlsMode,
  smtp: z.object({ host: z.string(), port: z.number().int(), tls: TlsMode }).nullable(),
  options: z.record(z.string(), z.unknown()),
  properties: PropertiesOut,
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const AccountCreate = z.strictObject({
  profile: Id.describe('profile id'),
  name: z.string().min(1).max(200).optional().describe('default: the user name'),
  address: z.string().min(3).max(320).optional().describe('mail address: the routing recipient of fetched mail and the sender of outbound mail'),
  username: z.string().min(1).max(320),
  password: z.string().max(1024).describe('kept encrypted (AES-256-GCM); never shown again'),
  options: mailOptionsSchema.default({}),
  properties: PropertiesInput.optional(),
});
export const AccountPatch = AccountCreate.partial();

export const Account = z.object({
  id: z.string(),
  profile: z.string(),
  name: z.string(),
  address: z.string().nullable(),
  username: z.string(),
  options: z.record(z.string(), z.unknown()),
  properties: PropertiesOut,
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const Health = z.object({
  lastOkAt: z.string().nullable().describe('last successful poll'),
  lastError: z.string().nullable(),
  lastErrorAt: z.string().nullable(),
  consecutiveFailures: z.number().int(),
  stale: z.boolean().describe('enabled, and no successful poll for mail.staleAfter'),
});

export const Folder = z.object({
  id: z.string(),
  account: z.string(),
  path: z.string().describe('the folder on the server (POP3: INBOX)'),
  specialUse: z.string().nullable(),
  enabled: z.boolean(),
  deleteOnServer: z.boolean(),
  moveOnSuccess: z.string().nullable(),
  moveOnFailure: z.string().nullable(),
  route: z.string().nullable().describe('route whose targets take this folder\'s mail; null: routed by recipient'),
  recipient: z.string().nullable().describe("envelope recipient given to fetched mail; null: the account's address"),
  options: z.record(z.string(), z.unknown()),
  properties: PropertiesOut,
  uidValidity: z.string().nullable(),
  lastUid: z.number().int(),
  fetched: z.number().int().describe('messages kept from this folder'),
  health: Health,
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const FolderPatch = z.strictObject({
  enabled: z.boolean().optional(),
  deleteOnServer: z.boolean().optional().describe('delete on the server once kept (IMAP: \\Deleted + EXPUNGE; POP3: DELE)'),
  moveOnSuccess: z.string().min(1).max(998).nullable().optional().describe('IMAP: move here once kept (wins over deleteOnServer)'),
  moveOnFailure: z.string().min(1).max(998).nullable().optional().describe('IMAP: move messages refused for good (too large, empty) here'),
  route: z.string().min(1).max(200).nullable().optional(),
  recipient: z.string().min(3).max(320).nullable().optional(),
  options: mailOptionsSchema.optional(),
  properties: PropertiesInput.optional(),
});

export const IdParams = z.strictObject({ id: Id });
export const AccountQuery = z.strictObject({ profile: Id.optional() });
export const FolderQuery = z.strictObject({
  account: Id.optional(),
  enabled: z.enum(['true', 'false']).optional().transform((v) => (v === undefined ? undefined : v === 'true')),
});
export const RefreshQuery = z.strictObject({ account: Id.optional().describe('one account; default: every account') });

export const Discovery = z.object({
  ok: z.boolean(),
  error: z.string().nullable().describe('why the server could not be asked (login refused, unreachable)'),
});

export const AccountCreated = Account.extend({ folders: z.array(Folder), discovery: Discovery });
export const RefreshResult = z.object({ items: z.array(z.object({ account: z.string(), discovery: Discovery, folders: z.array(Folder) })) });

/** A profile as the API shows it. */
export const profileOut = (p: MailProfile): z.output<typeof ProfileOut> => ({ ...p, options: { ...p.options }, properties: { ...p.properties } });
/** An account as the API shows it (never the password). */
export const accountOut = (a: MailAccount): z.output<typeof Account> => ({ ...a, options: { ...a.options }, properties: { ...a.properties } });
/** A folder as the API shows it, stale computed against `staleAfter`. */
export const folderOut = (f: MailFolder, stale: boolean): z.output<typeof Folder> => ({ ...f, options: { ...f.options }, properties: { ...f.properties }, health: { ...f.health, stale } });
