import { z } from 'zod';
import { size } from '../config/units.js';
import type { Target } from '../core/delivery.js';
import { retrySchema } from '../config/retry.js';
import { routeRetentionSchema } from '../config/retention.js';
import { checkClientEntries } from '../net/client-list.js';
import { MIME_DEFECTS } from '../core/mime-defects.js';
import { AUTH_RESULTS } from '../core/auth.js';
import { compileRecipientPattern, compileRegex } from './address.js';
import { compileTemplate, TemplateError } from './template.js';

/**
 * The schema of a route (`routes:` in the config). Routes are data: this one schema validates
 * them at config load (every bad key reported with its path, e.g.
 * `routes[0].deliver[0].spool.dir`) and documents them. Output stays plain JSON so that
 * planned deliveries can be stored with their params.
 */

/** A regex written plainly (`.*@gsm$`, searched case-insensitively) or as `/source/flags`; Python syntax too. */
const regexString = z.string().min(1).superRefine((v, ctx) => {
  try {
    compileRegex(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `not a valid regex: ${(e as Error).message}` });
  }
});

const recipientPattern = z.string().min(1).superRefine((v, ctx) => {
  try {
    compileRecipientPattern(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});

const mimePattern = z
  .string()
  .regex(/^(\*|[a-z0-9!#$&^_.+-]+)\/(\*|[a-z0-9!#$&^_.+-]+)$/i, 'a MIME type like application/pdf or image/*');

const oneOrMany = <T extends z.ZodType>(t: T) => z.union([t, z.array(t).min(1)]);

const headerCondition = z.strictObject({
  name: z.string().regex(/^[!-9;-~]+$/, 'a header field name (RFC 5322 §2.2)').describe('header field name, any case'),
  match: regexString.describe('regex on the decoded value; any one field of that name matching is enough'),
});

const authResult = z.enum(AUTH_RESULTS);
const authResults = oneOrMany(authResult);

/** `dkim: pass`, `dkim: [pass, none]` or `dkim: { result: pass, domain: example.org }`. */
const dkimCondition = z.union([
  authResults,
  z.strictObject({
    result: authResults.default('pass').describe('result(s) of a signature'),
    domain: z.string().min(1).describe("the signature's d= domain (any case; a subdomain does not count)"),
  }),
]);

export const authMatchSchema = z
  .strictObject({
    spf: authResults.optional().describe('SPF result(s) (RFC 7208 §2.6): pass, fail, softfail, neutral, none, temperror, permerror'),
    dkim: dkimCondition
      .optional()
      .describe('a DKIM signature with this result (optionally from this d= domain); `none`: unsigned'),
    dmarc: authResults.optional().describe('DMARC result(s) (RFC 7489): pass, fail, none, temperror, permerror'),
    arc: authResults.optional().describe('ARC chain result(s) (RFC 8617): pass, fail, none'),
  })
  .describe('sender authentication verdict (docs/authentication.md), checked after DATA; a message without a verdict matches no auth condition');

export const authFailureSchema = z
  .strictObject({
    action: z
      .enum(['refuse', 'quarantine'])
      .describe('refuse: 550 at the end of DATA (5.7.26 for DMARC, RFC 7372; 5.7.1 otherwise), nothing kept, when every recipient is refused so; quarantine: kept, deliveries `held` until released (POST /api/v1/deliveries/{id}/retry, or `postroom replay --status held`)'),
    require: z
      .array(z.enum(['dmarc', 'spf', 'dkim', 'arc']))
      .min(1)
      .default(['dmarc'])
      .describe('what must not fail: dmarc (fail under a published p=quarantine or p=reject), spf (fail), dkim (signed, and no signature passes), arc (fail)'),
  })
  .describe('what to do with mail for this route whose sender authentication fails; temperror never counts as a failure (refusing it would lose mail over a DNS outage)');

export const matchSchema = z
  .strictObject({
    recipient: oneOrMany(recipientPattern)
      .optional()
      .describe("envelope recipient: exact address, '*' glob, '/regex/' with named groups, or 'ogo+{objectId}@host'; unset: every recipient"),
    sender: z
      .strictObject({
        allow: z.array(regexString).optional().describe('the sender must match one of these; unset: every sender'),
        deny: z.array(regexString).default([]).describe('a sender matching any of these is refused (550 5.7.1)'),
        from: z.boolean().default(false).describe("also apply allow/deny to the From: header's addresses (checked after DATA)"),
      })
      .optional()
      .describe('regexes on the envelope sender (MAIL FROM); unset: every sender'),
    clients: z
      .array(z.string().min(1))
      .superRefine((v, ctx) => {
        const bad = checkClientEntries(v);
        if (bad) ctx.addIssue({ code: 'custom', message: bad });
      })
      .optional()
      .describe('client IPs, CIDRs, ranges or host names allowed to use this route; unset: every client'),
    users: z.array(z.string().min(1)).optional().describe('SMTP AUTH user names allowed to use this route'),
    authenticated: z.boolean().optional().describe('true: only authenticated sessions; false: only unauthenticated'),
    header: z.array(headerCondition).optional().describe('header conditions, all must hold (checked after DATA)'),
    size: z
      .strictObject({
        min: size().optional().describe('smallest message this route takes'),
        max: size().optional().describe('largest message this route takes'),
      })
      .optional()
      .describe('message size bounds (checked after DATA)'),
    attachment: oneOrMany(mimePattern)
      .optional()
      .describe('the message has an attachment of one of these MIME types (image/* allowed; checked after DATA)'),
    defects: z
      .union([z.boolean(), oneOrMany(z.enum(MIME_DEFECTS))])
      .optional()
      .describe(
        'true: the message is malformed (a parse defect, or it could not be parsed at all); false: it is clean; a defect name or list: it has one of them (checked after DATA)',
      ),
    auth: authMatchSchema.optional(),
    anonymous: z
      .enum(['accept', 'reject', 'ignore'])
      .optional()
      .describe(
        'null sender <> (bounces, delivery reports); ignore: accepted and kept but this route delivers nothing, so no bounce is caused; default reject for spool and webhook routes, else accept',
      ),
  })
  .describe('conditions, all of which must hold');

export type RouteMatch = z.output<typeof matchSchema>;

/** Walk params for strings holding `<%`, compile each as a template, report failures at its path. */
function checkTemplates(value: unknown, path: (string | number)[], known: string[], ctx: z.RefinementCtx): void {
  if (typeof value === 'string') {
    if (!value.includes('<%')) return;
    try {
      compileTemplate(value, known);
    } catch (e) {
      const at = e instanceof TemplateError ? ` (at character ${e.offset})` : '';
      ctx.addIssue({ code: 'custom', message: `template: ${(e as Error).message}${at}`, path });
    }
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => checkTemplates(v, [...path, i], known, ctx));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) checkTemplates(v, [...path, k], known, ctx);
  }
}

/**
 * One `deliver` item, `{ <kind>: params }`, validated by that kind's own schema so a bad param
 * is reported under its kind (`deliver[0].spool.format[1]`). Output: `{ kind, params }`.
 */
export function deliverItemSchema(targets: ReadonlyMap<string, Target<any>>) {
  const shape: Record<string, z.ZodType> = {};
  for (const [kind, t] of targets) shape[kind] = (t.params as z.ZodType).optional();
  return z
    .preprocess(
      // `- discard:` in YAML is { discard: null }: a kind without params.
      (v) =>
        v && typeof v === 'object' && !Array.isArray(v)
          ? Object.fromEntries(Object.entries(v).map(([k, p]) => [k, p === null ? {} : p]))
          : v,
      z.strictObject(shape),
    )
    .superRefine((v, ctx) => {
      const kinds = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined);
      if (kinds.length !== 1) {
        ctx.addIssue({
          code: 'custom',
          message: `name exactly one target kind (one of: ${[...targets.keys()].join(', ')}); got ${kinds.length ? kinds.join(', ') : 'none'}`,
        });
      }
    })
    .transform((v) => {
      const [kind, params] = Object.entries(v).find(([, p]) => p !== undefined)!;
      return { kind, params: params as unknown };
    });
}

/** The schema of one route, with `deliver` items checked against the given target registry. */
export function makeRouteSchema(targets: ReadonlyMap<string, Target<any>>) {
  return z
    .strictObject({
      name: z
        .string()
        .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, . _ - (up to 64)')
        .describe('unique; part of every delivery id, so renaming a route re-delivers'),
      enabled: z.boolean().default(true).describe('false: the route is checked but never used, as if it were not there'),
      priority: z
        .number()
        .int()
        .default(100)
        .describe('lower runs first (like MX preference); equal priorities keep file order'),
      catchAll: z
        .boolean()
        .default(false)
        .describe('only takes recipients no other route matched (forward or reject what is left)'),
      match: matchSchema.prefault({}),
      deliver: z
        .array(deliverItemSchema(targets))
        .min(1)
        .describe('targets, each { kind: params }, each delivered (and retried) on its own'),
      continue: z
        .boolean()
        .default(false)
        .describe('true: later routes may deliver this recipient too (fan-out); false: stop here'),
      authFailure: authFailureSchema.optional(),
      retry: retrySchema.optional().describe('retry policy of this route; default: 14 tries over about 3 days (docs/delivery.md)'),
      retention: routeRetentionSchema.optional(),
      dedup: z
        .boolean()
        .default(true)
        .describe(
          'deliver a message once per Message-ID, recipient and route when a copy arrives again through another relay (same body and non-trace headers, within delivery.dedupWindow); false: deliver every copy',
        ),
    })
    .superRefine((route, ctx) => {
      const recipients = route.match.recipient === undefined ? [] : [route.match.recipient].flat();
      const captures = recipients.flatMap((r) => {
        try {
          return compileRecipientPattern(r).captures;
        } catch {
          return []; // already reported at match.recipient
        }
      });
      route.deliver.forEach((d, i) => {
        // A spool target's "@ commands" are variables too (targets/spool-control.ts).
        const commands = (d.params as { commands?: { names?: string[] } } | undefined)?.commands?.names ?? [];
        checkTemplates(d.params, ['deliver', i, d.kind], [...captures, ...commands], ctx);
      });
    });
}

/** Routes with unique names. */
export function makeRoutesSchema(targets: ReadonlyMap<string, Target<any>>) {
  return z
    .array(makeRouteSchema(targets))
    .superRefine((routes, ctx) => {
      const seen = new Set<string>();
      routes.forEach((r, i) => {
        if (seen.has(r.name)) ctx.addIssue({ code: 'custom', message: `route name '${r.name}' used twice`, path: [i, 'name'] });
        seen.add(r.name);
      });
    })
    // A disabled route is validated (it can be switched back on) and then left out.
    .transform((routes) => routes.filter((r) => r.enabled))
    .describe(
      'routing rules: where kept mail goes, per envelope recipient (never only To:, so Bcc and forwarded mail route too), in priority order; no routes: every recipient is kept and delivered nowhere',
    );
}

export type Route = z.output<ReturnType<typeof makeRouteSchema>>;
export type RouteInput = z.input<ReturnType<typeof makeRouteSchema>>;
