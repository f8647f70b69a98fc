import { MESSAGE_STATUSES } from '../core/message.js';
import { z } from 'zod';
import { CATALOGUE, type ErrorCode } from '../core/errors.js';
import { MIME_DEFECTS } from '../core/mime-defects.js';
import { AUTH_RESULTS } from '../core/auth.js';

/**
 * Request and response shapes of the HTTP API. These zod schemas validate requests (route.ts)
 * and generate docs/openapi.json (openapi.ts): one source for both.
 */

/** A message's way through routing and delivery (our own outbound mail: sending → sent | error). */
const STATUSES = MESSAGE_STATUSES;
/** How parsing went; apart from the status, so delivering a message never hides that it could not be parsed. */
const PARSE_STATUSES = ['pending', 'parsed', 'raw'] as const;
/** What was wrong with a message that still parsed: names from src/core/mime-defects.ts. */
const Defects = z
  .array(z.enum(MIME_DEFECTS))
  .describe('what was wrong with the message though it parsed (e.g. missing-header-body-separator, invalid-date); empty when clean or not yet parsed');

/**
 * Our ids (and part ids): 26 characters of Crockford base32 (src/core/ids.ts), after an optional
 * two-letter prefix (`ma_`, `mf_`, `mp_`). Anything else cannot exist: a malformed id is the
 * client's mistake (400), told apart from a well-formed one we do not have (404).
 */
export const Id = z
  .string()
  .regex(/^(?:[a-z]{2}_)?[0-9a-hjkmnp-tv-z]{26}$/i, 'not an id');

/** An instant given as ISO 8601 (or anything Date parses), normalised to the stored UTC form. */
const Instant = z
  .string()
  .max(64)
  .transform((s, ctx) => {
    const d = new Date(s);
    if (Number.isNaN(d.getTime())) {
      ctx.addIssue({ code: 'custom', message: `not a date-time: '${s}' (use ISO 8601, e.g. 2026-01-31T12:00:00Z)` });
      return z.NEVER;
    }
    return d.toISOString();
  });

/** RFC 5322 §2.1.1: no header line is longer than 998 characters, so neither is a useful search. */
// NUL: PostgreSQL cannot compare text holding one, and no kept text holds one (parsing replaces it).
const NO_NUL = { message: 'must not contain NUL' };
const Search = z.string().min(1).max(998).refine((v) => !v.includes('\u0000'), NO_NUL);

export const MessageListQuery = z.strictObject({
  q: z
    .string()
    .max(998)
    .refine((v) => !v.includes('\u0000'), NO_NUL)
    .optional()
    .describe(
      'search: `from: to: rcpt: subject: message-id: status: route: ingress: has:attachment before: after: larger: smaller:` ' +
        'and free text (subject, sender, recipients and the start of the text body); every text term is a case-insensitive substring, ' +
        'answered from the search index when it has three characters or more; `-` negates a term, "double quotes" keep spaces. ' +
        'E.g. `from:alice has:attachment -status:delivered larger:1M`',
    ),
  since: Instant.optional().describe('received at or after this instant (ISO 8601)'),
  until: Instant.optional().describe('received before this instant (ISO 8601)'),
  from: Search.optional().describe('substring of the envelope sender or the From: header, case-insensitive'),
  rcpt: Search.optional().describe('substring of any envelope recipient, case-insensitive'),
  subject: Search.optional().describe('substring of the decoded Subject:, case-insensitive'),
  status: z
    .enum([...STATUSES, 'raw'])
    .optional()
    .describe('routing/delivery status; `raw` finds the messages that could not be parsed, whatever their delivery status (as `parse=raw`)'),
  parse: z.enum(PARSE_STATUSES).optional().describe('parse outcome: pending (not parsed yet), parsed, raw (could not be parsed; kept whole)'),
  ingress: z.string().min(1).max(32).refine((v) => !v.includes('\u0000'), NO_NUL).optional().describe('how the message arrived: smtp, pipe, http, imap, pop3'),
  account: Id.optional().describe('fetched from, or sent through, this mail account (id)'),
  folder: Id.optional().describe('fetched from this mail-account folder (id)'),
  limit: z.coerce.number().int().min(1).max(500).default(50).describe('page size (1–500)'),
  cursor: z.string().max(200).optional().describe('opaque: the nextCursor of the previous page'),
});

export const MessageParams = z.strictObject({ id: Id });
export const PartParams = z.strictObject({
  id: Id,
  part: z.string().max(64).regex(/^[0-9a-z_-]+$/i).describe('part id, or its index within the message'),
});
export const CidParams = z.strictObject({
  id: Id,
  cid: z.string().min(1).max(998).describe('Content-ID, with or without angle brackets'),
});

export const RawQuery = z.strictObject({
  trace: z
    .enum(['0', '1', 'false', 'true'])
    .default('1')
    .transform((v) => v === '1' || v === 'true')
    .describe('1 (default): our Received: trace header, then the bytes received; 0: exactly the bytes received'),
});

const Flag = z
  .enum(['0', '1', 'false', 'true'])
  .default('0')
  .transform((v) => v === '1' || v === 'true');

export const HtmlQuery = z.strictObject({
  inline: Flag.describe("1: the message's inline images (cid: URLs) inlined as data: URLs"),
  remote: Flag.describe('1: allow images, styles and fonts from the network (never script)'),
});

export const Envelope = z.object({
  mailFrom: z.string().describe("envelope sender; '' for the null sender <>"),
  rcptTo: z.array(z.string()),
  clientIp: z.string().nullable(),
  helo: z.string().nullable(),
  authUser: z.string().nullable(),
  receivedAt: z.string().describe('ISO 8601 UTC'),
});

export const MessageSummary = z.object({
  id: z.string(),
  ingress: z.string(),
  mailFrom: z.string(),
  rcptTo: z.array(z.string()),
  receivedAt: z.string(),
  messageId: z.string().nullable(),
  subject: z.string().nullable(),
  from: z.string().nullable(),
  date: z.string().nullable(),
  size: z.number().int().describe('bytes received (without our trace header)'),
  sha256: z.string().describe('sha256 of the bytes received'),
  status: z.enum(STATUSES).describe('routing and delivery: received → routed → delivered | failed'),
  parseStatus: z.enum(PARSE_STATUSES).describe('pending, parsed, or raw (could not be parsed; see parseError)'),
  defects: Defects,
});

export const MessageList = z.object({
  items: z.array(MessageSummary),
  nextCursor: z.string().nullable().describe('pass as ?cursor= for the next page; null on the last page'),
});

export const Part = z.object({
  id: z.string(),
  idx: z.number().int(),
  kind: z
    .enum(['text', 'html', 'body', 'attachment', 'inline', 'raw'])
    .describe('text/html: the readable bodies (UTF-8); body: one inline text part as sent, its declared charset in contentType (written when there is more than one, or /text would lose the charset); attachment/inline: files; raw: an unparsed message'),
  filename: z.string().nullable().describe('sanitised name, safe for a file system'),
  originalFilename: z.string().nullable().describe('the name the sender gave; never use it as a path'),
  contentType: z.string(),
  contentId: z.string().nullable(),
  size: z.number().int(),
  sha256: z.string(),
  url: z.string().describe('where to fetch the bytes'),
});

const AuthResultEnum = z.enum(AUTH_RESULTS);

/** A message's sender authentication verdict (src/core/auth.ts). */
export const AuthVerdictView = z
  .object({
    source: z.enum(['smtp', 'upstream']).describe("smtp: ours, verified at the end of DATA; upstream: a trusted host's Authentication-Results (auth.trustedHosts)"),
    authservId: z.string().describe('the host the verdict is in the name of (RFC 8601 authserv-id)'),
    spf: z.object({ result: AuthResultEnum, domain: z.string().nullable().describe('the MAIL FROM (or HELO) domain checked') }).optional(),
    dkim: z
      .array(
        z.object({
          domain: z.string().describe('d= of the signature'),
          selector: z.string().describe('s= of the signature'),
          result: AuthResultEnum,
          aligned: z.boolean().optional().describe('d= aligns with the From: domain (RFC 7489 §3.1.1)'),
          reason: z.string().optional(),
        }),
      )
      .describe('one entry per DKIM-Signature; empty when unsigned'),
    dmarc: z
      .object({
        result: AuthResultEnum,
        domain: z.string().nullable().describe('the From: domain'),
        policy: z.string().nullable().describe('the published policy (none, quarantine, reject); null when none was found'),
        alignment: z.object({ spf: z.boolean(), dkim: z.boolean() }).describe('which identifier aligned with From:'),
      })
      .optional(),
    arc: z.object({ result: AuthResultEnum, instance: z.number().int().optional().describe('i= of the last ARC set') }).optional(),
    reason: z.string().optional().describe('why the verdict is incomplete (DNS over auth.dnsTimeout: temperror)'),
  })
  .describe('SPF (RFC 7208), DKIM (RFC 6376), DMARC (RFC 7489) and ARC (RFC 8617) results, RFC 8601 words');

export const MessageDetail = z.object({
  id: z.string(),
  ingress: z.string(),
  envelope: Envelope,
  messageId: z.string().nullable(),
  subject: z.string().nullable(),
  from: z.string().nullable(),
  date: z.string().nullable(),
  size: z.number().int(),
  sha256: z.string(),
  status: z.enum(STATUSES).describe('routing and delivery: received → routed → delivered | failed'),
  error: z.string().nullable().describe('why routing or delivery went wrong (which route refused and why, a failed delivery)'),
  parseStatus: z.enum(PARSE_STATUSES).describe('pending, parsed, or raw (could not be parsed; kept whole as one raw part)'),
  parseError: z.string().nullable().describe('why the message could not be parsed (parseStatus raw)'),
  defects: Defects,
  parsedAt: z.string().nullable().describe('null until the parser has run'),
  trace: z
    .string()
    .nullable()
    .describe('our Received: header for this message (client, HELO, protocol: ESMTPS means TLS, ESMTPA AUTH), served before the raw bytes; null if trace headers are off'),
  headers: z.array(z.tuple([z.string(), z.string()])).describe('[name, unfolded value] in the order received'),
  addresses: z.record(z.string(), z.unknown()).nullable().describe('from, to, cc, replyTo address lists'),
  parts: z.array(Part),
  reports: z
    .array(
      z.object({
        part: z.number().int().describe('idx of the part it was read from'),
        contentType: z.string().describe('message/delivery-status (RFC 3464) or message/feedback-report (RFC 5965)'),
        perMessage: z.record(z.string(), z.string()).describe('the first block: Reporting-MTA, Arrival-Date… or Feedback-Type, User-Agent…'),
        recipients: z.array(z.record(z.string(), z.string())).describe('one block per recipient: Final-Recipient, Action, Status, Diagnostic-Code…'),
      }),
    )
    .describe('machine-readable report parts (bounces, abuse reports) read as fields'),
  duplicateOf: z
    .string()
    .nullable()
    .describe('the earlier copy of this message (the same one through another relay) whose deliveries it shares; null if none'),
  pinnedAt: z
    .string()
    .nullable()
    .describe('when an operator pinned it (POST /api/v1/messages/{id}/pin): retention never removes a pinned message; null if not pinned'),
  auth: AuthVerdictView.nullable().describe('sender authentication verdict; null when not verified (auth.enabled off, not SMTP and no trusted upstream)'),
});

export const AttachmentList = z.object({ items: z.array(Part) });

export const Health = z.object({ status: z.literal('ok'), db: z.literal('ok') });

export const Problem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z
    .enum(Object.keys(CATALOGUE) as [ErrorCode, ...ErrorCode[]])
    .describe('stable error code: a key of the error catalogue (src/core/errors.ts); branch on it, not on detail'),
  enhancedStatus: z.string().describe('RFC 3463 enhanced status code'),
  disposition: z.enum(['transient', 'permanent']),
  instance: z.string().optional(),
});

export const Live = z.object({ status: z.literal('ok') });

const ReadyChecks = z
  .object({
    shutdown: z.string().describe("'ok', or 'stopping' once the process has begun to stop"),
    store: z.string().describe("'ok' when a row was committed, else why not"),
    listeners: z.string().describe("'ok' when every configured listener accepts connections, else which do not"),
  })
  .describe('each check: ok, or what is wrong');

export const Ready = z.object({ status: z.literal('ready'), checks: ReadyChecks });

export const ReadyProblem = Problem.extend({ checks: ReadyChecks });
