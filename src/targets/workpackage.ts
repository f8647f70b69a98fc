import { z } from 'zod';
import type { ParsedMessage, Target } from '../core/delivery.js';
import { mailError } from '../core/errors.js';
import { DEFAULTABLE, mayOverride, type HandlerRules } from '../domain/tracker/attributes.js';
import { findProject, isMember, userByEmail } from '../domain/tracker/setup.js';
import { tq } from '../domain/tracker/tables.js';
import { handleMail, type IncomingMail } from '../domain/tracker/mail-handler.js';
import { sanitiseFilename } from '../mime/filename.js';
import { normaliseMessageId } from '../mime/header-sniff.js';
import { htmlToPlain } from '../mime/reply.js';
import { renderParam, unbound, type ObjectTargetDeps } from './object-deps.js';
import { checkNotifyAccount, notifyWorkPackage } from './workpackage-notify.js';

/** Names allow_override takes: the five defaults (tracker = type, as the original calls it), the other attributes, or all. */
const OVERRIDABLE = new Set([...DEFAULTABLE, 'tracker', 'all', 'assignee', 'assigned_to', 'version', 'fixed_version', 'start_date', 'due_date', 'done_ratio']);

/** The original's attribute names (Redmine's `assigned_to`, `fixed_version`, `tracker`) for ours. */
const ALIASES: Record<string, string> = { tracker: 'type', assigned_to: 'assignee', fixed_version: 'version' };

const nameList = z
  .union([z.string(), z.array(z.string().min(1))])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim().toLowerCase().replace(/\s+/g, '_')).filter(Boolean))
  .superRefine((names, ctx) => {
    for (const n of names) {
      if (!OVERRIDABLE.has(n)) ctx.addIssue({ code: 'custom', message: `'${n}' is not an attribute (use ${[...OVERRIDABLE].join(', ')})` });
    }
  })
  .transform((names) => [...new Set(names.map((n) => ALIASES[n] ?? n))]);

const defaultName = (what: string) => z.string().min(1).max(255).optional().describe(what);

export const workpackageParams = z
  .strictObject({
    project: defaultName("project identifier (or a template over the captures, '<%project%>'); the mail may name another only with allow_override: project"),
    type: defaultName('type (the original calls it tracker) of new work packages; default: the tracker\'s default type'),
    category: defaultName('category of new work packages, by name within the project'),
    priority: defaultName("priority of new work packages; default: the tracker's default priority"),
    status: defaultName("status of new work packages; default: the tracker's default status"),
    allow_override: nameList
      .default([])
      .describe("attributes the mail may set although a default above fixes them: comma list or array of project, type (tracker), category, priority, status, assignee (assigned_to), version (fixed_version), start_date, due_date, done_ratio, or 'all'"),
    no_permission_check: z
      .boolean()
      .default(false)
      .describe('take mail from senders who are no tracker user (the author is Anonymous) or not a member of the project'),
    require_dmarc: z
      .boolean()
      .default(false)
      .describe("the From: address names a tracker user only when the message passed DMARC (RFC 7489) for its domain; else the delivery fails with 5.7.1 (needs auth.enabled or a trusted upstream's Authentication-Results)"),
    truncate: z
      .union([z.string().min(1), z.array(z.string().min(1))])
      .transform((v) => (Array.isArray(v) ? v : [v]))
      .default([])
      .describe("delimiter lines after which the body is ignored, e.g. '--Truncate here--'"),
    notify: z
      .strictObject({ account: z.string().min(1).describe('mail account (id or name) whose SMTP server sends them; its address is the From:') })
      .optional()
      .describe('mail the author, assignee and watchers (not the writer) about each new work package and update; replies to these find their way back'),
  })
  .describe('make a work package of the mail in the built-in tracker, or update the one it answers');

export type WorkpackageParams = z.output<typeof workpackageParams>;

/** Message-IDs in an In-Reply-To or References value, in order. */
function messageIds(v: string | undefined): string[] {
  return v ? (v.match(/<[^<>\s]+>/g) ?? []) : [];
}

/** What the handler needs, read from the parsed message. */
export async function incomingMail(msg: ParsedMessage, maxFilename = 255): Promise<IncomingMail> {
  const header = (name: string) => msg.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v).join(' ');
  const text = (await msg.text()) ?? htmlToPlain((await msg.html()) ?? '');
  const others = [...(msg.addresses.to ?? []), ...(msg.addresses.cc ?? [])].map((a) => a.address);
  return {
    subject: msg.message.subject ?? '',
    text,
    from: msg.addresses.from?.[0]?.address || msg.message.mailFrom || null,
    recipients: [...others, ...msg.message.rcptTo],
    messageId: (header('message-id') && normaliseMessageId(header('message-id'))) || msg.message.messageId,
    answers: [...messageIds(header('in-reply-to')), ...messageIds(header('references')).reverse()],
    attachments: msg.parts
      .filter((p) => p.kind === 'attachment' || p.kind === 'inline')
      .map((p) => ({
        filename: sanitiseFilename(p.filename ?? p.originalFilename, { maxLength: maxFilename, index: p.idx, contentType: p.contentType }),
        contentType: p.contentType,
        size: p.size,
        sha256: p.sha256,
      })),
    ...(msg.message.auth?.dmarc ? { dmarc: msg.message.auth.dmarc.result } : {}),
  };
}

/** The route's rules, with templated defaults rendered over the captures. */
function rulesOf(p: WorkpackageParams, captures: Record<string, string>): HandlerRules {
  const defaults: HandlerRules['defaults'] = {};
  for (const k of DEFAULTABLE) {
    const v = renderParam(p[k], captures, []);
    if (v) defaults[k] = v;
  }
  return { defaults, allowOverride: new Set(p.allow_override), noPermissionCheck: p.no_permission_check, requireDmarc: p.require_dmarc, truncate: p.truncate };
}

/**
 * The `workpackage` target. A mail becomes a work package in the built-in tracker, or a
 * journal entry of the one it answers (In-Reply-To/References naming our notification or the
 * mail that made it, or `[#N]` in the subject). A sender who is no tracker user fails the
 * delivery permanently (5.7.1, the reason on the delivery and the message) unless the route
 * sets no_permission_check. Retried deliveries do nothing twice.
 */
export function createWorkpackageTarget(deps?: ObjectTargetDeps): Target<WorkpackageParams> {
  return {
    kind: 'workpackage',
    params: workpackageParams,
    // The work package a mail makes depends on the route's rules as rendered over the captures
    // (the project, type, …): recipients rendering the same rules make one work package.
    destination: (_rcpt, p, captures) => JSON.stringify(rulesOf(p, captures).defaults),
    // The original refuses unknown senders only after it read the mail; over SMTP the sender
    // learns it at RCPT (550 5.7.1, the reason named) when the envelope sender is no tracker
    // user, rather than a 250 and a delivery that fails where nobody sees it. The null sender
    // (a bounce) names nobody: its From: is looked at after DATA, as before.
    async check(_rcpt, p, ctx) {
      if (!deps || p.no_permission_check || !ctx.mailFrom) return;
      const rules = rulesOf(p, ctx.captures);
      const q = tq(deps.db.kysely);
      const user = await userByEmail(q, ctx.mailFrom);
      if (!user) throw mailError('REJECTED', `Unknown sender <${ctx.mailFrom}>: no tracker user has this address (a route with no_permission_check takes mail from anyone, as Anonymous)`);
      if (rules.defaults.project === undefined || mayOverride(rules, 'project')) return;
      const project = await findProject(q, rules.defaults.project);
      if (project && !(await isMember(q, project.id, user.id))) throw mailError('NOT_AUTHORISED', `User ${user.login} is not a member of project ${project.identifier}`);
    },
    async deliver(msg, p, ctx) {
      if (!deps) throw unbound('workpackage');
      const mail = await incomingMail(msg);
      // An account that cannot send defers the mail (4.3.5) before anything is made of it.
      if (p.notify) await checkNotifyAccount(deps.db, p.notify.account);
      const r = await handleMail(deps.db, mail, rulesOf(p, ctx.captures), { message: msg.message.id, delivery: ctx.deliveryId });
      const receipt = { summary: r.summary, workPackage: r.workPackage, created: r.created, journal: r.journal };
      if (!p.notify || !r.fresh) return receipt;
      // The work package is kept: a failure to queue the notification is reported, not retried
      // (a retry would find the work done and make nothing, notification included).
      try {
        const id = await notifyWorkPackage(deps, p.notify.account, r.workPackage, r.journal, r.created, mail.from, mail.messageId);
        return { ...receipt, notification: id ?? null };
      } catch (err) {
        return { ...receipt, summary: `${r.summary}; notification not sent: ${(err as Error).message}`, notification: null };
      }
    },
  };
}

/** The unbound `workpackage` target of the registry (config validation reads its params). */
export const workpackageTarget = createWorkpackageTarget();
