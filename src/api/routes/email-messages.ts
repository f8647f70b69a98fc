import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import { getAccount, getProfile } from '../../domain/accounts/store.js';
import { compose, keepForSending, OutboundRequest, sendDraft } from '../../outbound/compose.js';
import { getDelivery } from '../../store/deliveries.js';
import { listMessages } from '../../store/messages.js';
import { defineRoute } from '../route.js';
import { Id, MessageList, MessageListQuery, MessageSummary } from '../schemas.js';
import type { ApiDeps } from '../deps.js';
import { mailDeps } from '../deps.js';
import { decodeCursor, encodeCursor, MESSAGES, requireMessage, summaryOf } from './messages.js';
import { REST_MODEL } from './rest-model.js';
import { ENUMERATED, enumValues, isExtraValue, mergeProperties, PropertiesInput, readProperties, type MailModel } from '../../domain/accounts/model.js';
import { transact } from '../../store/db.js';
import { PropertiesOut } from './email-schemas.js';

const EMAIL_MESSAGES = '/api/v1/email/messages';

const Send = z
  .object({
    delivery: z.string().describe('the outbound delivery (GET /api/v1/deliveries/{id} for every attempt)'),
    status: z.string().describe('pending (retrying), done, failed or dead'),
    attempts: z.number().int(),
    reply: z.string().nullable().describe("the SMTP server's final reply, once sent"),
    lastError: z.string().nullable(),
  })
  .nullable();

/** A message's status as shown: the built-in ones and the operator's (mail.model.messages.values.status). */
const statusOf = (model?: MailModel) =>
  z.enum(enumValues(model, 'messages', 'status')).describe('routing and delivery (received → routed → delivered | failed), sending (draft → sending → sent | error), or a value of mail.model.messages.values.status');

const EmailMessageOut = MessageSummary.extend({
  error: z.string().nullable().describe('why the message is `error` (or why a send is being retried)'),
  account: z.string().nullable().describe('mail account it was fetched from or sent through'),
  folder: z.string().nullable().describe('folder it was fetched from'),
  send: Send.describe('outbound messages: how sending goes'),
  properties: PropertiesOut,
  url: z.string(),
});

/** What a PATCH may set: `sending` (a draft), or a status of the operator's. */
const messagePatch = (model?: MailModel) =>
  z.strictObject({
    status: z
      .enum(['sending', ...(model?.messages.values.status ?? [])] as [string, ...string[]])
      .optional()
      .describe(
        'sending: send a draft now (status-driven sending: `draft` → `sending` → `sent` | `error`); a value of mail.model.messages.values.status: set it, with no behaviour of Postroom\'s (refused while a delivery of the message is pending)',
      ),
    properties: PropertiesInput.optional(),
  });

const Created = z.object({
  id: z.string(),
  status: z.enum(['sending', 'draft']),
  messageId: z.string().describe('the Message-ID header we wrote'),
  delivery: z.string().nullable().describe('the outbound delivery; null for a draft'),
  url: z.string(),
});

const busy = (id: string, status: string) => mailError('CONFLICT', `message ${id} has a delivery pending: set ${status} once it is done`);

/** GET/POST /api/v1/email/messages and GET /api/v1/email/messages/:id. */
export async function emailMessageRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const db = deps.db;
  // Built with the operator's extra statuses (mail.model), so validation and OpenAPI show them.
  const model = deps.mail?.config.model;
  const EmailMessage = EmailMessageOut.extend({ status: statusOf(model) });
  const MessagePatch = messagePatch(model);
  const pendingDelivery = async (id: string, q: Pick<typeof db.kysely, 'selectFrom'> = db.kysely) =>
    !!(await q.selectFrom('deliveries').select('id').where('message', '=', id).where('status', '=', 'pending').executeTakeFirst());
  const ListQuery = MessageListQuery.extend({
    status: z
      .enum([...ENUMERATED.messages.status, 'raw', ...(model?.messages.values.status ?? [])] as [string, ...string[]])
      .optional()
      .describe('status (a built-in one or of mail.model.messages.values.status); `raw`: the messages that could not be parsed'),
  });

  defineRoute(
    app,
    {
      method: 'GET',
      url: EMAIL_MESSAGES,
      aliases: [`${REST_MODEL}/Messages`],
      summary: 'Messages of mail accounts (fetched or sent), newest first; the same filters as /api/v1/messages',
      tags: ['email'],
      query: ListQuery,
      responses: { 200: { description: 'one page of messages', schema: MessageList } },
    },
    async ({ query }) => {
      const { cursor, limit, ...filters } = query;
      const rows = await listMessages(db.kysely, { ...filters, before: cursor ? decodeCursor(cursor) : undefined, limit: limit + 1 });
      const page = rows.slice(0, limit);
      return { items: page.map(summaryOf), nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1].id) : null };
    },
  );

  defineRoute(
    app,
    {
      method: 'POST',
      url: EMAIL_MESSAGES,
      aliases: [`${REST_MODEL}/Messages`],
      summary: "Send a message through an account's SMTP server (status `sending` → `sent` | `error`)",
      description:
        'The message is composed (text and/or HTML, attachments, inline images by cid, In-Reply-To/References), kept, and ' +
        'handed to the delivery worker; a 4xx or unreachable server is retried with backoff, a 5xx makes it `error`.',
      tags: ['email'],
      body: OutboundRequest,
      responses: { 201: { description: 'kept and queued for sending', schema: Created } },
    },
    async ({ body, reply }) => {
      const mail = mailDeps(deps);
      const account = await getAccount(db, body.account);
      if (!account) throw mailError('INVALID_REQUEST', `body.account: no account ${body.account}`);
      const profile = await getProfile(db, account.profile);
      if (!profile?.smtp) throw mailError('INVALID_REQUEST', `body.account: the profile of ${account.name} has no SMTP server`);
      const from = body.from ?? account.address;
      if (!from) throw mailError('INVALID_REQUEST', 'body.from: required when the account has no address');
      if (!body.to && !body.cc && !body.bcc) throw mailError('INVALID_REQUEST', 'body: at least one of to, cc, bcc');
      if (!body.text && !body.html) throw mailError('INVALID_REQUEST', 'body: text or html');
      const built = await compose(body, from, mail.hostname);
      const kept = await keepForSending({ db, blobs: deps.blobs }, account.id, built, body.status === 'draft');
      // Parsed as received mail is (the same parser, the same parts), so the content routes
      // (/html, /attachments, /inlines and the seed's aliases) answer for it too.
      mail.parse?.(kept.id);
      if (kept.deliveryId) mail.wake();
      reply.code(201);
      return { id: kept.id, status: body.status, messageId: built.messageId, delivery: kept.deliveryId, url: `${MESSAGES}/${kept.id}` };
    },
  );

  defineRoute(
    app,
    {
      method: 'GET',
      url: `${EMAIL_MESSAGES}/:id`,
      aliases: [`${REST_MODEL}/Messages/:id`],
      summary: 'One message with its account, folder and (outbound) how sending went',
      tags: ['email'],
      params: z.strictObject({ id: Id }),
      responses: { 200: { description: 'the message', schema: EmailMessage } },
    },
    async ({ params }) => {
      const m = await requireMessage(deps, params.id);
      const link = await db.kysely.selectFrom('mail_links').selectAll().where('message', '=', m.id).executeTakeFirst();
      let send: z.output<typeof Send> = null;
      // Sent through an account: POSTed (link `outbound`) or fetched into a folder that sends on arrival.
      if (link) {
        const d = await db.kysely.selectFrom('deliveries').select('id').where('message', '=', m.id).where('kind', '=', 'outbound').executeTakeFirst();
        const rec = d && (await getDelivery(db.kysely, d.id));
        if (rec) {
          const r = rec.receipt as { reply?: string | null } | null;
          send = { delivery: rec.id, status: rec.status, attempts: rec.attempts, reply: r?.reply ?? null, lastError: rec.lastError };
        }
      }
      const properties = readProperties((await db.kysely.selectFrom('message_properties').select('properties').where('message', '=', m.id).executeTakeFirst())?.properties);
      return { ...summaryOf(m), error: m.error, account: link?.account ?? null, folder: link?.folder ?? null, send, properties, url: `${MESSAGES}/${m.id}` };
    },
  );

  defineRoute(
    app,
    {
      method: 'PATCH',
      url: `${EMAIL_MESSAGES}/:id`,
      aliases: [`${REST_MODEL}/Messages/:id`],
      summary: 'Send a draft (`status: sending`), set a status of your own (mail.model.messages.values.status), and/or properties of your own (mail.model.messages.properties; null removes one)',
      tags: ['email'],
      params: z.strictObject({ id: Id }),
      body: MessagePatch,
      responses: {
        200: { description: 'the status and properties now', schema: z.object({ id: z.string(), status: z.string(), delivery: z.string().nullable(), properties: PropertiesOut }) },
        409: { description: 'status sending asked of a message that is no draft of an account, or a status of your own while a delivery is pending (code CONFLICT)' },
      },
    },
    async ({ params, body }) => {
      const m = await requireMessage(deps, params.id);
      let delivery: string | null = null;
      if (body.status === 'sending') {
        // Checked before anything changes, so a refused PATCH sets no property either.
        if (m.status !== 'draft') throw mailError('CONFLICT', `message ${m.id} is ${m.status}, not a draft: only a draft can be switched to sending`);
      }
      const extra = body.status !== undefined && isExtraValue(model, 'messages', 'status', body.status) ? body.status : undefined;
      if (extra && (await pendingDelivery(m.id))) throw busy(m.id, extra);
      const row = await db.kysely.selectFrom('message_properties').select('properties').where('message', '=', m.id).executeTakeFirst();
      const properties = mergeProperties(mailDeps(deps).config.model, 'messages', readProperties(row?.properties), body.properties);
      if (body.properties) {
        const json = JSON.stringify(properties);
        await db.kysely
          .insertInto('message_properties')
          .values({ message: m.id, properties: json })
          .onConflict((oc) => oc.column('message').doUpdateSet({ properties: json }))
          .execute();
      }
      if (extra) {
        // A status of the operator's means nothing to Postroom: routing takes only `received`,
        // sending only `draft` → `sending`, so the message is left alone from now on. Not while a
        // delivery is pending: its end would overwrite the status (refreshMessageStatus).
        const set = await transact(db, async (trx) => {
          if (await pendingDelivery(m.id, trx)) return false;
          await trx.updateTable('messages').set({ status: extra, updated_at: new Date().toISOString() }).where('id', '=', m.id).execute();
          return true;
        });
        if (!set) throw busy(m.id, extra);
      }
      if (body.status === 'sending') {
        delivery = (await sendDraft(db, m.id)) ?? null;
        if (!delivery) throw mailError('CONFLICT', `message ${m.id} is no longer a draft of an account`);
        mailDeps(deps).wake();
      }
      const status = body.status ?? m.status;
      return { id: m.id, status, delivery, properties };
    },
  );
}
