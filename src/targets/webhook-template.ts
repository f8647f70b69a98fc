import { z } from 'zod';
import type { DeliveryContext, ParsedMessage } from '../core/delivery.js';
import { compileTemplate, type Template, type TemplateContext } from '../routing/template.js';

/**
 * A webhook body built from a template of message fields, for endpoints that want their own
 * shape (a chat's incoming webhook, a form handler) rather than Postroom's document. The
 * template language is the one of spool control files (routing/template.ts): names, 'literals',
 * `a|b` fallbacks, now:FORMAT, name~/regex/; nothing is evaluated.
 *
 * The template is structure, not text: `json` is an object (or JSON text, parsed at config
 * load) whose string values are templates, `form` a map of field names to templates. Each
 * string is rendered on its own and the whole is then serialised (JSON.stringify, or
 * application/x-www-form-urlencoded), so a subject with a quote, a backslash, a control
 * character or `</script>` is always a string value in valid JSON, never JSON syntax: there is
 * no escaping step to forget.
 */

/** Ready-made payloads, by name. */
export const PAYLOAD_PRESETS = {
  /** Slack, Mattermost, Rocket.Chat, Teams-compatible incoming webhooks: one `text` field. */
  slack: {
    json: {
      text: "New mail for <%recipient%> from <%messageFromName|messageFromAddress|address%>: <%subject|'(no subject)'%>",
    },
  },
  /** A plain HTML form POST (application/x-www-form-urlencoded). */
  form: {
    form: {
      from: '<%messageFromAddress|address%>',
      fromName: '<%messageFromName%>',
      to: '<%recipient%>',
      subject: '<%subject%>',
      text: '<%msg%>',
      messageId: '<%messageId%>',
      id: '<%id%>',
    },
  },
} as const;

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

const jsonValue: z.ZodType<Json> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(jsonValue), z.record(z.string(), jsonValue)]),
);

/** Syntax check of every string in a value (variables are checked against the route's captures by the route schema). */
function checkSyntax(value: Json, path: (string | number)[], ctx: z.RefinementCtx): void {
  if (typeof value === 'string') {
    try {
      compileTemplate(value);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: `template: ${(e as Error).message}`, path });
    }
  } else if (Array.isArray(value)) value.forEach((v, i) => checkSyntax(v, [...path, i], ctx));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) checkSyntax(v, [...path, k], ctx);
}

/** JSON text is parsed at config load; placeholders go inside its strings ("<%subject%>"). */
const jsonTemplate = jsonValue
  .transform((v, ctx): Json => {
    if (typeof v !== 'string') return v;
    try {
      return JSON.parse(v) as Json;
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: `not JSON (each <%…%> goes inside a "string"): ${(e as Error).message}` });
      return z.NEVER;
    }
  })
  .superRefine((v, ctx) => checkSyntax(v, [], ctx))
  .describe('an object (or JSON text) whose string values are templates; sent as application/json');

const formTemplate = z
  .record(z.string().min(1), z.string())
  .superRefine((v, ctx) => checkSyntax(v, [], ctx))
  .describe('field names and their templates; sent as application/x-www-form-urlencoded, in this order');

const PRESET_NAMES = Object.keys(PAYLOAD_PRESETS) as [keyof typeof PAYLOAD_PRESETS, ...(keyof typeof PAYLOAD_PRESETS)[]];

// One object, not a union: each mistake is reported at its own key path (a union reports only
// that no alternative fitted).
export const payloadTemplateSchema = z
  .preprocess(
    // Shorthands: `payload: slack` is a preset, `payload: '{"text": …}'` JSON text.
    (v) => (typeof v === 'string' ? (/^\s*[[{]/.test(v) ? { json: v } : { preset: v }) : v),
    z
      .strictObject({
        preset: z.enum(PRESET_NAMES).optional().describe('slack: {"text": "New mail for … from …: subject"}; form: from, fromName, to, subject, text, messageId, id'),
        json: jsonTemplate.optional(),
        form: formTemplate.optional(),
      })
      .superRefine((p, ctx) => {
        const given = (['preset', 'json', 'form'] as const).filter((k) => p[k] !== undefined);
        if (given.length !== 1) ctx.addIssue({ code: 'custom', message: `give one of preset, json, form (got ${given.join(', ') || 'none'})` });
      })
      .transform((p): PayloadTemplate => (p.preset ? PAYLOAD_PRESETS[p.preset] : p.json !== undefined ? { json: p.json } : { form: p.form! })),
  )
  .describe(
    "the body built from a template of message fields instead of Postroom's document: a preset (`payload: slack` for chat webhooks' {\"text\": …}, `payload: form` for an HTML form POST), { json: OBJECT or JSON text } or { form: { FIELD: TEMPLATE } }. String values are templates as in spool control files (<%subject%>, <%a|b%>, <%now:%Y%>), each rendered and then JSON- or form-encoded",
  );

export type PayloadTemplate = { readonly json: Json } | { readonly form: Readonly<Record<string, string>> };

/** The template variables of a message for one delivery: those of spool control files, where they mean something here. */
export async function payloadVars(msg: ParsedMessage, ctx: DeliveryContext): Promise<Record<string, string>> {
  const m = msg.message;
  const from = msg.addresses.from?.[0];
  const replyTo = msg.addresses.replyTo?.[0];
  return {
    address: m.mailFrom,
    sender: m.mailFrom,
    recipient: ctx.recipients[0] ?? '',
    app: ctx.route,
    subject: m.subject ?? '',
    msg: (await msg.text()) ?? '',
    messageFromAddress: from?.address ?? '',
    messageFromName: from?.name ?? '',
    messageReplyToAddress: replyTo?.address ?? '',
    messageReplyToName: replyTo?.name ?? '',
    messageId: m.messageId ?? '',
    id: m.id,
    attachmentFiles: msg.parts
      .filter((p) => p.kind === 'attachment')
      .map((p) => p.filename ?? '')
      .filter(Boolean)
      .join(','),
    ...ctx.captures,
  };
}

/** Render a payload template: the body bytes and their Content-Type. `tpl` compiles (and caches) one template. */
export function renderPayload(
  t: PayloadTemplate,
  render: TemplateContext,
  tpl: (source: string) => Template = compileTemplate,
): { body: Buffer; contentType: string } {
  if ('form' in t) {
    const form = new URLSearchParams();
    for (const [k, v] of Object.entries(t.form)) form.append(k, tpl(v).render(render));
    return { body: Buffer.from(form.toString()), contentType: 'application/x-www-form-urlencoded' };
  }
  const fill = (v: Json): Json =>
    typeof v === 'string'
      ? tpl(v).render(render)
      : Array.isArray(v)
        ? v.map(fill)
        : v && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x)]))
          : v;
  return { body: Buffer.from(JSON.stringify(fill(t.json))), contentType: 'application/json' };
}
