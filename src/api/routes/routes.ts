import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mailError, toSmtpReply } from '../../core/errors.js';
import { buildParsedView } from '../../mime/parsed-view.js';
import { redact } from '../../delivery/redact.js';
import type { Router } from '../../routing/router.js';
import type { ContentFacts, EnvelopeFacts } from '../../routing/rules.js';
import { defineRoute } from '../route.js';
import { Id } from '../schemas.js';
import type { ApiDeps } from '../deps.js';

export const ROUTES = '/api/v1/routes';

const Target = z.object({ kind: z.string(), params: z.unknown().describe('as configured, secrets replaced by "***"') });

const RouteView = z.object({
  name: z.string(),
  priority: z.number().int(),
  catchAll: z.boolean(),
  continue: z.boolean(),
  match: z.unknown().describe('the match block as configured'),
  deliver: z.array(Target),
  retry: z.unknown().nullable().describe("the route's retry policy; null: the default (docs/delivery.md)"),
});

const RouteList = z.object({ items: z.array(RouteView).describe('in the order they are tried (priority, then file order)') });

const Address = z.string().min(1).max(256);

export const RouteTestQuery = z.strictObject({
  sender: z.string().max(256).default('').describe("envelope sender; '' for the null sender <>"),
  recipient: z
    .union([Address, z.array(Address).max(100)])
    .optional()
    .transform((v) => (v === undefined ? [] : typeof v === 'string' ? [v] : v))
    .describe("envelope recipient; repeat for several (default: the stored message's)"),
  clientIp: z.string().max(64).optional().describe('the client address a route may match on'),
  authUser: z.string().max(256).optional().describe('the SMTP AUTH user a route may match on'),
  message: Id.optional().describe('a stored message: its envelope (unless recipients are given) and its content (header and size conditions)'),
});

const RecipientVerdict = z.object({
  recipient: z.string(),
  routes: z.array(
    z.object({ route: z.string(), captures: z.record(z.string(), z.string()), targets: z.array(Target) }),
  ).describe('the routes that take this recipient, in order'),
  refusals: z.array(z.object({ route: z.string(), reason: z.string() })).describe('routes whose pattern matched but which did not take it, and why'),
  rcptReply: z.string().describe('what an SMTP client would be told at RCPT TO'),
});

const RouteTestResult = z.object({
  envelope: z.object({ sender: z.string(), recipients: z.array(z.string()), clientIp: z.string().nullable(), authUser: z.string().nullable() }),
  contentChecked: z.boolean().describe('false: no message given, so header and size conditions count as met (as at RCPT time)'),
  recipients: z.array(RecipientVerdict),
});

function requireRouter(deps: ApiDeps): Router {
  if (!deps.router) throw mailError('CONFIG', 'This server has no router');
  return deps.router;
}

function targetsOf(deliver: readonly { kind: string; params: unknown }[]): z.output<typeof Target>[] {
  return deliver.map((d) => ({ kind: d.kind, params: redact(d.params) }));
}

/** GET /api/v1/routes and POST /api/v1/routes/test: what the router would do, without sending anything. */
export async function routeRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  defineRoute(
    app,
    {
      method: 'GET',
      url: ROUTES,
      summary: 'Every route in the order it is tried, with its match, targets and retry policy',
      tags: ['routes'],
      responses: { 200: { description: 'the routes', schema: RouteList } },
    },
    async () => ({
      items: requireRouter(deps).routes.map((c) => ({
        name: c.name,
        priority: c.route.priority,
        catchAll: c.route.catchAll,
        continue: c.route.continue,
        match: redact(c.route.match),
        deliver: targetsOf(c.route.deliver),
        retry: c.route.retry ?? null,
      })),
    }),
  );

  defineRoute(
    app,
    {
      // GET: it changes nothing, so it needs no CSRF token, no audit row, and a viewer may ask.
      method: 'GET',
      url: `${ROUTES}/test`,
      summary: 'Which route takes each recipient of an envelope (or a stored message), without sending anything',
      description:
        'Runs the router as RCPT time does (sender, client and target checks) and, for a stored message, with its content ' +
        '(header and size conditions). Nothing is kept, planned or delivered. It reads configuration only, so it is a GET any viewer may call.',
      tags: ['routes'],
      query: RouteTestQuery,
      responses: { 200: { description: 'each recipient and its routes', schema: RouteTestResult } },
    },
    async ({ query: body }) => {
      const router = requireRouter(deps);
      let env: EnvelopeFacts = { mailFrom: body.sender, clientIp: body.clientIp ?? null, authUser: body.authUser ?? null };
      let recipients = body.recipient;
      let content: ContentFacts | undefined;
      if (body.message) {
        const parsed = await buildParsedView(deps, body.message);
        const m = parsed.message;
        if (!recipients.length) {
          recipients = m.rcptTo;
          env = { mailFrom: m.mailFrom, clientIp: m.clientIp, authUser: m.authUser };
        }
        content = { headers: parsed.headers, size: m.size, parts: parsed.parts, from: parsed.addresses.from ?? [] };
      }
      if (!recipients.length) throw mailError('INVALID_REQUEST', 'query.recipient: give at least one recipient, or a message');
      const verdicts = [];
      for (const rcpt of recipients) {
        const d = await router.decide(rcpt, env, content);
        let rcptReply = '250 2.1.5 Recipient OK';
        if (!d.matches.length && router.routes.length) {
          const reply = toSmtpReply(d.refusal ?? mailError('UNKNOWN_RECIPIENT', `No such recipient here: <${rcpt}>`));
          rcptReply = `${reply.code} ${reply.message}`;
        }
        verdicts.push({
          recipient: rcpt,
          routes: d.matches.map((mt) => ({ route: mt.route.name, captures: mt.captures, targets: targetsOf(mt.route.route.deliver) })),
          refusals: d.refusals,
          rcptReply,
        });
      }
      return {
        envelope: { sender: env.mailFrom, recipients, clientIp: env.clientIp ?? null, authUser: env.authUser ?? null },
        contentChecked: !!content,
        recipients: verdicts,
      };
    },
  );
}
