import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import type { MailConfig } from '../../domain/accounts/config.js';
import type { SecretBox } from '../../domain/accounts/secret-box.js';
import * as store from '../../domain/accounts/store.js';
import { discoverFolders } from '../../ingress/fetch/discover.js';
import { isStale } from '../../ingress/fetch/scheduler.js';
import { defineRoute } from '../route.js';
import { mailDeps, type ApiDeps } from '../deps.js';
import {
  Account,
  AccountCreate,
  AccountCreated,
  AccountPatch,
  AccountQuery,
  accountOut,
  Folder,
  FolderPatch,
  FolderQuery,
  folderOut,
  IdParams,
  profileOut,
  profileSchemas,
  RefreshQuery,
  RefreshResult,
} from './email-schemas.js';
import { emailMessageRoutes } from './email-messages.js';
import { mergeProperties } from '../../domain/accounts/model.js';
import { REST_MODEL } from './rest-model.js';

export const EMAIL = '/api/v1/email';

const DEFAULT_PORT = { imap: { tls: 993, plain: 143 }, pop3: { tls: 995, plain: 110 } } as const;
const tags = ['email'];
const ok = (description: string, schema: z.ZodType) => ({ 200: { description, schema } });
const taken = (what: string) => ({ description: `a ${what} of that name exists (code CONFLICT)` });
const Empty = z.object({});

/** /api/v1/email/profiles, /accounts, /folders (+ refresh), /messages. */
export async function emailRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const db = deps.db;
  // Built with the operator's extra values (mail.model), so validation and OpenAPI show them.
  const { Profile, ProfileCreate, ProfilePatch } = profileSchemas(deps.mail?.config.model);
  const folderView = (f: store.MailFolder) => folderOut(f, isStale(f, mailDeps(deps).config.staleAfter));
  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw mailError('NOT_FOUND', `No ${what}`);
    return v;
  };

  defineRoute(app, { method: 'GET', url: `${EMAIL}/profiles`, aliases: [`${REST_MODEL}/Profiles`], summary: 'List mail profiles (server settings)', tags, responses: ok('profiles', z.object({ items: z.array(Profile) })) }, async () => ({
    items: (await store.listProfiles(db)).map(profileOut),
  }));

  defineRoute(
    app,
    { method: 'POST', url: `${EMAIL}/profiles`, aliases: [`${REST_MODEL}/Profiles`], summary: 'Create a mail profile: IMAP or POP3 server, and the SMTP server accounts send through', tags, body: ProfileCreate, responses: { 201: { description: 'the profile', schema: Profile }, 409: taken('profile') } },
    async ({ body, reply }) => {
      if ((await store.listProfiles(db)).some((p) => p.name === body.name)) throw mailError('CONFLICT', `body.name: a profile named '${body.name}' exists`);
      const builtIn = body.protocol === 'imap' || body.protocol === 'pop3' ? DEFAULT_PORT[body.protocol] : undefined;
      if (!builtIn && body.port === undefined) throw mailError('INVALID_REQUEST', `body.port: required for protocol ${body.protocol} (no default of Postroom's)`);
      const port = body.port ?? builtIn![body.tls === 'tls' ? 'tls' : 'plain'];
      const properties = mergeProperties(mailDeps(deps).config.model, 'profiles', {}, body.properties);
      const p = await store.createProfile(db, { ...body, port, smtp: body.smtp ?? null, properties });
      reply.code(201);
      return profileOut(p);
    },
  );

  defineRoute(app, { method: 'GET', url: `${EMAIL}/profiles/:id`, aliases: [`${REST_MODEL}/Profiles/:id`], summary: 'One mail profile', tags, params: IdParams, responses: ok('the profile', Profile) }, async ({ params }) =>
    profileOut(need(await store.getProfile(db, params.id), `profile ${params.id}`)),
  );

  defineRoute(
    app,
    { method: 'PATCH', url: `${EMAIL}/profiles/:id`, aliases: [`${REST_MODEL}/Profiles/:id`], summary: 'Change a mail profile (watchers of its folders restart)', tags, params: IdParams, body: ProfilePatch, responses: ok('the profile', Profile) },
    async ({ params, body }) => {
      const current = need(await store.getProfile(db, params.id), `profile ${params.id}`);
      const properties = body.properties && mergeProperties(mailDeps(deps).config.model, 'profiles', current.properties, body.properties);
      const p = need(await store.updateProfile(db, params.id, { ...body, properties }), `profile ${params.id}`);
      mailDeps(deps).refresh();
      return profileOut(p);
    },
  );

  defineRoute(
    app,
    { method: 'DELETE', url: `${EMAIL}/profiles/:id`, aliases: [`${REST_MODEL}/Profiles/:id`], summary: 'Delete a mail profile no account uses', tags, params: IdParams, responses: { ...ok('deleted', Empty), 409: { description: 'accounts still use the profile (code CONFLICT)' } } },
    async ({ params }) => {
      need(await store.getProfile(db, params.id), `profile ${params.id}`);
      if (!(await store.deleteProfile(db, params.id))) throw mailError('CONFLICT', `profile ${params.id} is used by accounts; delete them first`);
      return {};
    },
  );

  defineRoute(
    app,
    { method: 'GET', url: `${EMAIL}/accounts`, aliases: [`${REST_MODEL}/Accounts`], summary: 'List mail accounts (passwords are never shown)', tags, query: AccountQuery, responses: ok('accounts', z.object({ items: z.array(Account) })) },
    async ({ query }) => ({ items: (await store.listAccounts(db, query.profile)).map(accountOut) }),
  );

  defineRoute(
    app,
    {
      method: 'POST',
      url: `${EMAIL}/accounts`, aliases: [`${REST_MODEL}/Accounts`],
      summary: "Create a mail account; its folders are discovered from the profile's server",
      description: 'Discovered folders start disabled. If the server cannot be asked, the account is still created and `discovery.error` says why; refresh later.',
      tags,
      body: AccountCreate,
      responses: { 201: { description: 'the account, its folders and how discovery went', schema: AccountCreated }, 409: taken('account') },
    },
    async ({ body, reply }) => {
      const { box } = mailDeps(deps);
      const profile = await store.getProfile(db, body.profile);
      if (!profile) throw mailError('INVALID_REQUEST', `body.profile: no profile ${body.profile}`);
      const name = body.name ?? body.username;
      if ((await store.listAccounts(db)).some((a) => a.name === name)) throw mailError('CONFLICT', `body.name: an account named '${name}' exists; give this one a name`);
      const properties = mergeProperties(mailDeps(deps).config.model, 'accounts', {}, body.properties);
      const account = await store.createAccount(db, box, { ...body, name, properties });
      const { folders, discovery } = await discoverFolders(db, box, profile, account);
      reply.code(201);
      return { ...accountOut(account), folders: folders.map(folderView), discovery };
    },
  );

  defineRoute(app, { method: 'GET', url: `${EMAIL}/accounts/:id`, aliases: [`${REST_MODEL}/Accounts/:id`], summary: 'One mail account', tags, params: IdParams, responses: ok('the account', Account) }, async ({ params }) =>
    accountOut(need(await store.getAccount(db, params.id), `account ${params.id}`)),
  );

  defineRoute(
    app,
    { method: 'PATCH', url: `${EMAIL}/accounts/:id`, aliases: [`${REST_MODEL}/Accounts/:id`], summary: 'Change a mail account (a new password is encrypted again)', tags, params: IdParams, body: AccountPatch, responses: ok('the account', Account) },
    async ({ params, body }) => {
      const current = need(await store.getAccount(db, params.id), `account ${params.id}`);
      const properties = body.properties && mergeProperties(mailDeps(deps).config.model, 'accounts', current.properties, body.properties);
      if (body.profile && !(await store.getProfile(db, body.profile))) throw mailError('INVALID_REQUEST', `body.profile: no profile ${body.profile}`);
      const a = need(await store.updateAccount(db, mailDeps(deps).box, params.id, { ...body, properties }), `account ${params.id}`);
      mailDeps(deps).refresh();
      return accountOut(a);
    },
  );

  defineRoute(
    app,
    { method: 'DELETE', url: `${EMAIL}/accounts/:id`, aliases: [`${REST_MODEL}/Accounts/:id`], summary: 'Delete a mail account and its folders (kept messages stay)', tags, params: IdParams, responses: ok('deleted', Empty) },
    async ({ params }) => {
      need(await store.getAccount(db, params.id), `account ${params.id}`);
      await store.deleteAccount(db, params.id);
      mailDeps(deps).refresh();
      return {};
    },
  );

  defineRoute(
    app,
    { method: 'GET', url: `${EMAIL}/folders`, aliases: [`${REST_MODEL}/Folders`], summary: 'List folders with their settings and health', tags, query: FolderQuery, responses: ok('folders', z.object({ items: z.array(Folder) })) },
    async ({ query }) => ({ items: (await store.listFolders(db, query)).map(folderView) }),
  );

  defineRoute(
    app,
    {
      method: 'POST',
      url: `${EMAIL}/folders/refresh`,
      summary: 'Discover folders again (new ones are added disabled; known ones keep their settings)',
      tags,
      query: RefreshQuery,
      responses: ok('per account: how discovery went and its folders', RefreshResult),
    },
    async ({ query }) => {
      const { box } = mailDeps(deps);
      const accounts = query.account ? [need(await store.getAccount(db, query.account), `account ${query.account}`)] : await store.listAccounts(db);
      const items = [];
      for (const a of accounts) {
        const profile = need(await store.getProfile(db, a.profile), `profile ${a.profile}`);
        const { folders, discovery } = await discoverFolders(db, box, profile, a);
        items.push({ account: a.id, discovery, folders: folders.map(folderView) });
      }
      return { items };
    },
  );

  defineRoute(app, { method: 'GET', url: `${EMAIL}/folders/:id`, aliases: [`${REST_MODEL}/Folders/:id`], summary: 'One folder: settings, cursor and health', tags, params: IdParams, responses: ok('the folder', Folder) }, async ({ params }) =>
    folderView(need(await store.getFolder(db, params.id), `folder ${params.id}`)),
  );

  defineRoute(
    app,
    {
      method: 'PATCH',
      url: `${EMAIL}/folders/:id`, aliases: [`${REST_MODEL}/Folders/:id`],
      summary: 'Enable a folder, or change what happens to its mail once kept',
      description: 'Mail is deleted or moved on the server only after it is kept (fsync + commit).',
      tags,
      params: IdParams,
      body: FolderPatch,
      responses: ok('the folder', Folder),
    },
    async ({ params, body }) => {
      const current = need(await store.getFolder(db, params.id), `folder ${params.id}`);
      const properties = body.properties && mergeProperties(mailDeps(deps).config.model, 'folders', current.properties, body.properties);
      const f = need(await store.updateFolder(db, params.id, { ...body, properties }), `folder ${params.id}`);
      mailDeps(deps).refresh();
      return folderView(f);
    },
  );

  // Enabling and disabling a folder is an operator's daily work (a mailbox gone bad, back
  // again); what happens to mail on the server (delete, move) stays with PATCH, admin only.
  for (const [verb, enabled] of [['enable', true], ['disable', false]] as const) {
    defineRoute(
      app,
      {
        method: 'POST',
        url: `${EMAIL}/folders/:id/${verb}`,
        summary: enabled ? 'Enable a folder: it is polled again' : 'Disable a folder: it is not polled until enabled',
        tags,
        role: 'operator',
        audit: `email.folder.${verb}`,
        params: IdParams,
        responses: ok('the folder', Folder),
      },
      async ({ params }) => {
        need(await store.getFolder(db, params.id), `folder ${params.id}`);
        const f = need(await store.updateFolder(db, params.id, { enabled }), `folder ${params.id}`);
        mailDeps(deps).refresh();
        return folderView(f);
      },
    );
  }

  await emailMessageRoutes(app, deps);
}
