import { z } from 'zod';
import { duration, size } from '../../config/units.js';
import { retrySchema } from '../../config/retry.js';
import { mailModelSchema } from './model.js';
import { parseSearch } from '../../core/message-search.js';

/** `mail:` in the config: how this node fetches from mail accounts (the accounts live in the store). */
export const mailSchema = z.strictObject({
  fetch: z.boolean().default(true).describe('watch enabled folders of mail accounts from this node (a lease keeps each folder on one node)'),
  staleAfter: duration()
    .default(10 * 60_000)
    .describe('an enabled folder without a successful poll for this long is stale (health, metric, one warning log line)'),
  rescanInterval: duration()
    .default(30_000)
    .describe('how often the store is read for folders added or changed elsewhere (another node, the CLI)'),
  folderListInterval: duration()
    .default(5 * 60_000)
    .describe("how often each account's server is asked for its folder list (new folders appear disabled without POST /api/v1/email/folders/refresh); 0: never"),
  maxMessageSize: size()
    .default(200 * 1024 * 1024)
    .describe('a fetched message larger than this is refused (5.3.4): moved to moveOnFailure, or left on the server'),
  reconnectMax: duration()
    .default(5 * 60_000)
    .describe('longest wait between reconnect attempts after a failure (the wait doubles from 1 s up to this)'),
  batch: z.number().int().min(1).max(1000).default(100).describe('messages fetched and kept per round (one group commit)'),
  outboundRetry: retrySchema
    .optional()
    .describe('retry policy for messages sent through accounts (a 4xx or unreachable SMTP server); default: the delivery default'),
  model: mailModelSchema,
});

export type MailConfig = z.output<typeof mailSchema>;

/**
 * Options of a profile, account or folder (JSON, snake_case as in the mail handlers users know).
 * A folder's option wins over its account's, an account's over its profile's.
 */
export const mailOptionsSchema = z
  .strictObject({
    after_read_timeout: duration().optional().describe('poll interval when the server has no IDLE (or idle is false); default 30 s'),
    idle: z.boolean().optional().describe('use IMAP IDLE when the server offers it (default true)'),
    tls_verify: z.boolean().optional().describe('check the server certificate (default true)'),
    sent_folder: z
      .string()
      .min(1)
      .max(998)
      .optional()
      .describe('IMAP: after a message is sent through the account, APPEND a copy here, flagged \\Seen (e.g. "Sent")'),
    send_on_arrival: z
      .union([
        z.boolean(),
        z
          .string()
          .min(1)
          .max(998)
          .refine((q) => {
            try {
              parseSearch(q);
              return true;
            } catch {
              return false;
            }
          }, 'not a message search (the q of GET /api/v1/messages, e.g. "subject:invoice -has:attachment")'),
      ])
      .optional()
      .describe(
        'send what appears in the folder (an Outbox) through the account: true for every message, or a message search (the `q` of GET /api/v1/messages) a message must match; others are routed as usual. On an account: every enabled folder of it; false on a folder turns it off there',
      ),
    apop: z.boolean().optional().describe('POP3: log in with APOP (RFC 1939 §7) instead of USER/PASS'),
    delete_unprocessed: z
      .boolean()
      .optional()
      .describe('POP3: delete messages that could not be kept (refused permanently); default: leave them on the server'),
  })
  .describe('options; a folder\'s win over its account\'s, an account\'s over its profile\'s');

export type MailOptions = z.output<typeof mailOptionsSchema>;

/** The default poll interval (folder, else account, else profile, else 30 s). */
export const DEFAULT_AFTER_READ_TIMEOUT = 30_000;

/** The options in force for a folder: profile ← account ← folder. */
export function effectiveOptions(...layers: (MailOptions | undefined)[]): MailOptions {
  const out: Record<string, unknown> = {};
  for (const layer of layers) for (const [k, v] of Object.entries(layer ?? {})) if (v !== undefined) out[k] = v;
  return out as MailOptions;
}
