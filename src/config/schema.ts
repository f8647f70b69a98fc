import { z } from 'zod';
import { mailSchema } from '../domain/accounts/config.js';
import { groupsSchema } from '../domain/groups/config.js';
import { objectRoutes, objectsSchema, OBJECT_ROUTE_NAMES } from '../domain/objects/config.js';
import { routesSchema } from '../routing/schema.js';
import { duration, listen, size } from './units.js';

/**
 * The one config schema. Every key is documented here (the descriptions feed the config
 * reference) and in config/postroom.example.yaml. Unknown keys are errors: a typo must not
 * silently become a default.
 */

const clientList = z
  .array(z.string().min(1))
  .describe('IPs, CIDRs (10.0.0.0/8), ranges (192.168.1.0-192.168.1.31) or host names');

const smtpUser = z.strictObject({
  username: z.string().min(1),
  /** scrypt$N$r$p$saltB64$hashB64, made by `postroom hash-password`. */
  password: z.string().regex(/^scrypt\$/, 'must be a scrypt hash made by `postroom hash-password`'),
});

export const smtpSchema = z.strictObject({
  enabled: z.boolean().default(true),
  listen: listen().default({ host: '127.0.0.1', port: 2525 }).describe('host:port of the SMTP listener'),
  hostname: z.string().optional().describe('name in the banner and the Received: header; default: the OS host name'),
  banner: z.string().default('Postroom ESMTP').describe('text after the host name in the 220 greeting'),
  maxMessageSize: size().default(200 * 1024 * 1024).describe('advertised in EHLO SIZE and enforced (552 5.3.4)'),
  minFreeSpace: size()
    .default(64 * 1024 * 1024)
    .describe('free space that must remain in the data directory (and staging) beyond the declared SIZE, else MAIL gets 452 4.3.1'),
  maxRecipients: z.number().int().positive().default(100).describe('RCPT TO past this get 452 4.5.3'),
  maxClients: z.number().int().positive().default(100).describe('connections past this get 421 4.7.0'),
  maxClientsPerIp: z
    .number()
    .int()
    .positive()
    .default(50)
    .describe('connections from one client IP past this get 421 4.7.0 (Postfix smtpd_client_connection_count_limit)'),
  socketTimeout: duration().default(60_000).describe('idle time before the connection is closed (421 4.4.2)'),
  dataTimeout: duration()
    .default(10 * 60_000)
    .describe('a message not received in full this long after DATA ends the session with 421 4.4.2'),
  minDataRate: size()
    .default(1024)
    .describe('bytes per second DATA must average after minDataRateGrace, else 421 4.4.2 (0 = no check; Postfix smtpd_min_data_rate)'),
  minDataRateGrace: duration().default(30_000).describe('time DATA may take before minDataRate counts'),
  greetingDelay: z
    .strictObject({
      allowlisted: duration().default(0),
      others: duration().default(100),
    })
    .prefault({})
    .describe('wait before the 220 greeting; a client that talks before it gets 554 5.5.1 (none where the delay is 0)'),
  clients: clientList.optional().describe('clients allowed to send without AUTH; unset: every client'),
  auth: z
    .strictObject({
      users: z.array(smtpUser).default([]),
      allowInsecure: z.boolean().default(false).describe('offer AUTH without TLS (not recommended)'),
    })
    .optional()
    .describe('SMTP AUTH PLAIN/LOGIN; clients outside `clients` may send after authenticating'),
  tls: z
    .strictObject({ key: z.string(), cert: z.string() })
    .optional()
    .describe('PEM files for STARTTLS'),
  domains: z
    .array(z.string().min(1))
    .default([])
    .describe('recipient domains accepted here; empty: every recipient (only safe on loopback)'),
  postmaster: z
    .string()
    .min(3)
    .optional()
    .describe('address that takes mail for postmaster@ every domain (always accepted, RFC 5321 §4.5.1); unset: such mail is kept unrouted'),
  requireMessageId: z.boolean().default(false).describe('refuse mail without Message-ID (550 5.6.0)'),
  bareLineEndings: z
    .enum(['reject', 'normalize'])
    .default('reject')
    .describe('bare LF / bare CR in DATA: reject with 550 5.5.2, or rewrite to CRLF'),
  traceHeader: z
    .boolean()
    .default(true)
    .describe('prepend a Received: header to kept mail; it carries this installation\'s id, which maxPasses counts'),
  maxReceived: z
    .number()
    .int()
    .positive()
    .default(50)
    .describe('a message with more Received: headers is a loop: 554 5.4.6 at the end of DATA (every ingress)'),
  maxPasses: z
    .number()
    .int()
    .positive()
    .default(2)
    .describe('a message that has passed this installation this many times (our Received: headers) is a loop: 554 5.4.6'),
});

export const httpSchema = z.strictObject({
  enabled: z.boolean().default(true),
  listen: listen().default({ host: '127.0.0.1', port: 8025 }).describe('host:port of the HTTP API'),
  apiToken: z.string().min(16).optional().describe('bearer token; default: generated once into DATA_DIR/api-token'),
  publicUrl: z.string().url().optional().describe('URL by which others reach the API (links in webhooks, List-Archive)'),
  maxUploadSize: size().default(200 * 1024 * 1024),
  tls: z
    .strictObject({ key: z.string(), cert: z.string() })
    .optional()
    .describe('PEM files: serve the API and console over HTTPS (session cookies are then Secure)'),
  sessions: z
    .strictObject({
      idleTimeout: duration().default(30 * 60_000).describe('a console session unused this long is signed out'),
      maxAge: duration().default(12 * 3_600_000).describe('a console session ends this long after sign-in, however active'),
    })
    .prefault({}),
  signIn: z
    .strictObject({
      attemptsPerMinute: z.number().int().positive().default(10).describe('failed sign-ins allowed per client IP and per user name each minute; then 429'),
      scryptCost: z
        .number()
        .int()
        .min(10)
        .max(20)
        .default(15)
        .describe('log2 of scrypt N for new user passwords (15: N=32768, r=8, p=1, 32 MiB); lower only in tests'),
    })
    .prefault({}),
});

export const storeSchema = z.strictObject({
  database: z
    .string()
    .optional()
    .describe('postgres://… for PostgreSQL; a file path for SQLite; default DATA_DIR/postroom.db'),
  blobs: z.enum(['fs', 'db']).optional().describe('where raw bytes live; default fs on SQLite, db on PostgreSQL'),
  commitWindow: duration()
    .default(0)
    .describe('extra wait to gather more messages into one fsync + commit (group commit)'),
  poolSize: z
    .number()
    .int()
    .positive()
    .default(10)
    .describe('PostgreSQL connections per node; keep nodes × poolSize under the server\'s max_connections'),
  statementTimeout: duration()
    .default(30_000)
    .describe('PostgreSQL: a statement running longer is cancelled (0 = never)'),
  sweep: z
    .strictObject({
      interval: duration().default(3_600_000).describe('how often leftovers of failed intakes are removed (also once at start; 0 = only at start)'),
      grace: duration()
        .default(3_600_000)
        .refine((v) => v >= 600_000, 'at least 10m: longer than any intake in flight')
        .describe('age before an unreferenced blob (or a staging file of a dead process) is removed; longer than any intake in flight'),
    })
    .prefault({})
    .describe('removing blobs no row points at (a transaction that failed after the bytes were in place) and staging files of crashed processes'),
});

export const parseSchema = z.strictObject({
  maxDepth: z.number().int().positive().default(20).describe('deepest MIME nesting parsed before the message is kept as raw'),
  maxHeaderSize: size().default(256 * 1024).describe('header block larger than this: kept as raw'),
  maxFilenameLength: z.number().int().min(16).max(255).default(200),
  workers: z
    .number()
    .int()
    .positive()
    .default(2)
    .describe('messages parsed at once; besides them, up to 16 small ones (256 KiB or less) just received'),
  pollInterval: duration()
    .default(2_000)
    .describe('how often to look for messages `postroom deliver` or `postroom fetch` kept in this store from another process (0 = only at start)'),
  thread: z
    .boolean()
    .default(true)
    .describe('parse messages of up to 4 MiB on a worker thread beside the event loop that answers SMTP'),
});

export const logSchema = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export const deliverySchema = z.strictObject({
  workers: z.number().int().positive().default(16).describe('deliveries run at once by this node'),
  leaseTime: duration()
    .default(60_000)
    .describe('a delivery leased by a node that died is taken again after this (renewed while an attempt runs)'),
  pollInterval: duration().default(1_000).describe('how often the queue is checked for due retries and other nodes\' work'),
  attemptTimeout: duration().default(10 * 60_000).describe('an attempt running longer is aborted and retried'),
  dedupWindow: duration()
    .default(7 * 24 * 3600_000)
    .describe("a copy of a message delivered this recently (same Message-ID, body and non-trace headers, through another relay) is kept but not delivered again to the same recipient and route; 0 turns it off"),
  perDestination: z
    .number()
    .int()
    .positive()
    .optional()
    .describe(
      'deliveries run at once per destination (a webhook origin, a forward relay host:port), so one stuck endpoint cannot hold every worker; default: a quarter of workers, at least 1',
    ),
  breaker: z
    .strictObject({
      failures: z.number().int().min(1).default(5).describe('consecutive transient failures after which a destination is paused'),
      pause: duration().default(30_000).describe('first pause; then one delivery probes it, and each failed probe doubles the pause'),
      maxPause: duration().default(10 * 60_000).describe('the longest pause between probes'),
    })
    .prefault({})
    .describe('circuit breaker per destination: while paused, its deliveries wait without spending attempts'),
});

export const configSchema = z.strictObject({
  dataDir: z.string().default('./data').describe('database, blobs and the generated API token'),
  smtp: smtpSchema.prefault({}),
  http: httpSchema.prefault({}),
  store: storeSchema.prefault({}),
  parse: parseSchema.prefault({}),
  log: logSchema.prefault({}),
  routes: routesSchema.default([]),
  delivery: deliverySchema.prefault({}),
  groups: groupsSchema.prefault({}).describe('discussion groups: the SMTP relay posts go out through, the bounce limit'),
  objects: objectsSchema.prefault({}).describe('addresses of built-in objects: PREFIX+<id>@DOMAIN, PREFIX+wf+<name>@DOMAIN'),
  secretKey: z
    .string()
    .min(16)
    .optional()
    .describe('encrypts mail-account passwords at rest (AES-256-GCM); default: generated once into DATA_DIR/secret-key. Nodes sharing a store must share it'),
  mail: mailSchema.prefault({}).describe('fetching from mail accounts (IMAP, POP3); the accounts themselves are kept in the store'),
}).transform((cfg, ctx) => {
  // `objects:` adds its two routes after the configured ones; their names are then taken.
  const added = objectRoutes(cfg.objects);
  cfg.routes.forEach((r, i) => {
    if (added.length && (OBJECT_ROUTE_NAMES as readonly string[]).includes(r.name)) {
      ctx.addIssue({ code: 'custom', message: `route name '${r.name}' is taken by the objects: section`, path: ['routes', i, 'name'] });
    }
  });
  return { ...cfg, routes: [...cfg.routes, ...added] };
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type SmtpConfig = Config['smtp'];
export type HttpConfig = Config['http'];
