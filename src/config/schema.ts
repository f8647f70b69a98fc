import { z } from 'zod';
import { mailSchema } from '../domain/accounts/config.js';
import { groupsSchema } from '../domain/groups/config.js';
import { objectRoutes, objectsSchema, OBJECT_ROUTE_NAMES } from '../domain/objects/config.js';
import { makeRouteSchema, makeRoutesSchema } from '../routing/schema.js';
import { targets } from '../targets/index.js';
import { checkClientEntries } from '../net/client-list.js';
import { duration, listen, size } from './units.js';
import { retentionSchema } from './retention.js';

/**
 * The one config schema. Every key is documented here (the descriptions feed the config
 * reference) and in config/postroom.example.yaml. Unknown keys are errors: a typo must not
 * silently become a default.
 */

const clientList = z
  .array(z.string().min(1))
  // Checked here as route lists are: a bad entry is a config problem, not a failed start.
  .superRefine((v, ctx) => {
    const bad = checkClientEntries(v);
    if (bad) ctx.addIssue({ code: 'custom', message: bad });
  })
  .describe('IPs, CIDRs (10.0.0.0/8, fd00::/8), ranges (192.168.1.0-192.168.1.31) or host names (resolved forward, cached briefly)');

const smtpUser = z.strictObject({
  username: z.string().min(1).describe('the name the client gives in AUTH PLAIN or LOGIN; routes can require it (match.users)'),
  /** scrypt$N$r$p$saltB64$hashB64, made by `postroom hash-password`. */
  password: z
    .string()
    .regex(/^scrypt\$/, 'must be a scrypt hash made by `postroom hash-password`')
    .describe('scrypt hash of the password, printed by `postroom hash-password` (never the password itself)'),
});

export const smtpSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('false: no SMTP listener (mail arrives through the other ingresses only: `postroom deliver`, mail accounts, POST /api/v1/inbound)'),
  listen: listen()
    .default({ host: '127.0.0.1', port: 2525 })
    .describe('address of the SMTP listener; the default takes mail from this host only: use 0.0.0.0:25 for the network, and then set domains and clients or auth'),
  hostname: z.string().optional().describe('host name in the 220 greeting, the EHLO reply and our Received: header; default: the OS host name'),
  banner: z.string().default('Postroom ESMTP').describe('text after the host name in the 220 greeting'),
  maxMessageSize: size()
    .default(200 * 1024 * 1024)
    .describe('largest message accepted: advertised in EHLO SIZE (RFC 1870) and enforced while DATA streams; a larger one gets 552 5.3.4 and nothing of it is kept'),
  minFreeSpace: size()
    .default(64 * 1024 * 1024)
    .describe('free space that must remain in the data directory (and staging) beyond the SIZE a client declares, else MAIL gets 452 4.3.1 and the client retries later, before any byte is sent'),
  maxRecipients: z
    .number()
    .int()
    .positive()
    .default(100)
    .describe('recipients per transaction; RCPT TO past this get 452 4.5.3 and the client sends the rest in another transaction (RFC 5321 §4.5.3.1.8)'),
  maxClients: z.number().int().positive().default(100).describe('simultaneous connections; one more is answered 421 4.7.0 and closed'),
  maxClientsPerIp: z
    .number()
    .int()
    .positive()
    .default(50)
    .describe('simultaneous connections from one client IP; one more gets 421 4.7.0, so a few slow clients cannot take every slot (Postfix smtpd_client_connection_count_limit). A relay in front counts as one client: leave it room'),
  socketTimeout: duration().default(60_000).describe('an idle connection is closed after this long (421 4.4.2)'),
  dataTimeout: duration()
    .default(10 * 60_000)
    .describe('a message not received in full this long after DATA ends the session with 421 4.4.2; any byte resets socketTimeout, so this is what bounds a trickling client'),
  minDataRate: size()
    .default(1024)
    .describe('bytes per second DATA must average once minDataRateGrace is over, else 421 4.4.2: sheds clients that hold a slot by trickling (Postfix smtpd_min_data_rate); 0: no check'),
  minDataRateGrace: duration().default(30_000).describe('how long DATA may run before minDataRate counts'),
  greetingDelay: z
    .strictObject({
      allowlisted: duration().default(0).describe('wait for clients in `clients` (every client when `clients` is unset)'),
      others: duration().default(100).describe('wait for clients outside `clients` (they can only send after AUTH)'),
    })
    .prefault({})
    .describe('wait before the 220 greeting: a client that talks before it (a spam bot trait, postscreen\'s pregreet test) gets 554 5.5.1; none is refused where the wait is 0. Each wait costs a round trip on every connection'),
  clients: clientList
    .optional()
    .describe(
      "clients that may send without AUTH, besides those on any route's match.clients (which may then use only the routes that list them); others get 530 5.7.0 until they authenticate (554 5.7.1 without auth). Unset: every client",
    ),
  auth: z
    .strictObject({
      users: z.array(smtpUser).default([]).describe('the accounts clients may authenticate as'),
      senderIsUser: z
        .boolean()
        .default(true)
        .describe(
          "when a user name is an address (as the fax gateway's users are their senders), MAIL FROM after AUTH must be that address, else 553 5.7.1; false: any sender",
        ),
      allowInsecure: z
        .boolean()
        .default(false)
        .describe('offer AUTH on connections without TLS, where the password crosses the network in clear text: only for loopback or a network you trust'),
    })
    .optional()
    .describe('SMTP AUTH PLAIN and LOGIN (RFC 4954): clients outside `clients` may send after authenticating. Unset: no AUTH'),
  tls: z
    .strictObject({
      key: z.string().describe('PEM file of the private key'),
      cert: z.string().describe('PEM file of the certificate chain (full chain: the certificate first)'),
    })
    .optional()
    .describe('STARTTLS (RFC 3207) with these files; unset: no STARTTLS'),
  domains: z
    .array(z.string().min(1))
    .default([])
    .describe('recipient domains accepted here; others get 550 5.1.1 or 554 5.7.1 (relaying denied). Empty: every recipient is kept, only safe while listening on loopback'),
  postmaster: z
    .string()
    .min(3)
    .optional()
    .describe('address that takes mail for postmaster@ every domain, which is accepted whatever the routes say (RFC 5321 §4.5.1), so that its route delivers it; unset: such mail is kept unrouted, to be read through the API'),
  requireMessageId: z
    .boolean()
    .default(false)
    .describe('refuse a message without a Message-ID header (550 5.6.0), so that duplicates can always be recognised'),
  nonstandardDataTerminator: clientList
    .optional()
    .describe(
      "clients (old fax machines) whose DATA may end with CRLF SP . CRLF as well as CRLF . CRLF (the fax gateway's nonstandard_data_terminator); nobody else: a second end-of-data form is what SMTP smuggling needs",
    ),
  bareLineEndings: z
    .enum(['reject', 'normalize'])
    .default('reject')
    .describe('a bare LF or bare CR in DATA, the raw material of SMTP smuggling: reject answers 550 5.5.2; normalize rewrites it to CRLF and keeps the message (for senders you cannot fix)'),
  logReceivedData: z
    .strictObject({
      enabled: z
        .boolean()
        .default(false)
        .describe('log what clients send: every command line (AUTH credentials replaced by ****) and the first maxBytes of each message'),
      maxBytes: size().default(64 * 1024).describe("a message's bytes logged at most; dataBytes says how many were received, dataTruncated that the rest was left out"),
    })
    .prefault({})
    .describe(
      "the fax gateway's log_rcv_data: one line `smtp received data` at debug level after each transaction line (and one when the session ends), so each destination's level decides who gets it: e.g. log.file.level: debug writes it to smtp_YYMMDD.log only. Message content lands in the log: off by default",
    ),
  traceHeader: z
    .boolean()
    .default(true)
    .describe('record a Received: header (RFC 5321 §4.4) for kept mail, served in front of the raw bytes; it names this installation, so that maxPasses can count our own passes'),
  maxReceived: z
    .number()
    .int()
    .positive()
    .default(50)
    .describe('a message with more Received: headers than this is a mail loop: 554 5.4.6 at the end of DATA, by every ingress (Postfix hopcount_limit)'),
  maxPasses: z
    .number()
    .int()
    .positive()
    .default(2)
    .describe('a message that has passed this installation this many times (our Received: headers) is a loop: 554 5.4.6; stops a route forwarding to our own listener, directly or through another MTA'),
});

export const httpSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('false: no HTTP listener (no API, WebDAV or health checks; metrics only on http.metrics.listen)'),
  listen: listen().default({ host: '127.0.0.1', port: 8025 }).describe('address of the HTTP listener: the API, WebDAV (/dav), /livez, /readyz, /healthz and /metrics'),
  apiToken: z
    .string()
    .min(16)
    .optional()
    .describe('bearer token of the API; default: generated once into DATA_DIR/api-token (mode 0600). Prefer POSTROOM_API_TOKEN to writing it into the file'),
  publicUrl: z.string().url().optional().describe('URL by which others reach the API, used in links Postroom sends out (webhook payloads, List-Archive); default: none'),
  maxUploadSize: size()
    .default(200 * 1024 * 1024)
    .describe('largest request body the API accepts, and so the largest message POST /api/v1/inbound keeps (larger: 413 with 5.3.4)'),
  tls: z
    .strictObject({
      key: z.string().describe('PEM file of the private key'),
      cert: z.string().describe('PEM file of the certificate chain, the server certificate first'),
    })
    .optional()
    .describe('PEM files: serve the API and console over HTTPS (session cookies are then Secure)'),
  metrics: z
    .strictObject({
      public: z
        .boolean()
        .default(false)
        .describe('true: GET /metrics on the API listener answers without a token (for a Prometheus that cannot send one; the counts then show to anyone who reaches the port)'),
      listen: listen()
        .optional()
        .describe('serve GET /metrics, without a token and nothing else, on a listener of its own (e.g. 127.0.0.1:9025 or a private interface), also when http.enabled is false'),
    })
    .prefault({})
    .describe('Prometheus scraping: by default GET /metrics needs the API token like the rest of the API'),
  sessions: z
    .strictObject({
      idleTimeout: duration().default(30 * 60_000).describe('a console session unused this long is signed out'),
      maxAge: duration().default(12 * 3_600_000).describe('a console session ends this long after sign-in, however active'),
    })
    .prefault({})
    .describe('console sign-in sessions: how long one lasts'),
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
    .prefault({})
    .describe('console sign-in: the failed-attempt limit and the password hash cost'),
});

export const storeSchema = z.strictObject({
  database: z
    .string()
    .optional()
    .describe('a SQLite file path, or postgres://user:pass@host:5432/db for PostgreSQL, where many nodes share one store (?schema=NAME keeps the tables in that schema); default: DATA_DIR/postroom.db'),
  blobs: z
    .enum(['fs', 'db', 's3'])
    .optional()
    .describe('where raw bytes live: fs, content-addressed files under DATA_DIR/blobs (default on SQLite), db, in the database in 1 MiB chunks (default on PostgreSQL: every node sees every message without a shared file system), or s3, objects in an S3-compatible bucket (store.s3); with fs and s3, blobs up to 128 KiB stay in the database'),
  s3: z
    .strictObject({
      endpoint: z
        .string()
        .url()
        .optional()
        .describe('the S3 API URL: http://minio:9000, https://<account>.r2.cloudflarestorage.com, …; unset: AWS S3 in `region`. Credentials never go here: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, or the AWS SDK\'s default chain (profile, instance role)'),
      bucket: z.string().min(3).max(63).describe('the bucket (created beforehand; Postroom needs GetObject, PutObject, DeleteObject, ListBucket and the multipart calls)'),
      region: z.string().default('us-east-1').describe('the region to sign for (R2: auto; MinIO, Ceph RGW, Garage: whatever they are configured with, often us-east-1 or garage)'),
      prefix: z
        .string()
        .regex(/^[A-Za-z0-9._\-/]*$/, 'letters, digits, . _ - and /')
        .default('postroom')
        .transform((p) => p.replace(/^\/+|\/+$/g, ''))
        .describe('key prefix: blobs are kept as PREFIX/ab/cd/<sha256>, so one bucket can hold other things (or several installations)'),
      forcePathStyle: z
        .boolean()
        .default(false)
        .describe('address the bucket in the path (http://host/bucket/key) instead of the host name: true for MinIO, Ceph RGW, Garage and most self-hosted servers'),
    })
    .optional()
    .describe('the bucket for store.blobs: s3'),
  commitWindow: duration()
    .default(0)
    .describe('extra wait to gather more concurrent messages into one fsync + commit (group commit): more throughput under load for that much latency; 0: commit whatever waits as soon as the previous commit is done'),
  poolSize: z
    .number()
    .int()
    .positive()
    .default(10)
    .describe('PostgreSQL connections per node; keep nodes × (poolSize + 1) under the server\'s max_connections'),
  statementTimeout: duration()
    .default(30_000)
    .describe('PostgreSQL: a statement running longer is cancelled, so a stuck lock fails one operation instead of holding a worker forever; 0: never'),
  routesPollInterval: duration()
    .default(5_000)
    .describe(
      'how often this node reads the one row that counts changes of routes made through the API (on any node sharing the store), and reloads them when it moved; 0: only at start and after changes made through this node',
    ),
  sweep: z
    .strictObject({
      interval: duration().default(3_600_000).describe('how often leftovers of failed intakes are removed (also once at start; 0 = only at start)'),
      grace: duration()
        .default(3_600_000)
        .refine((v) => v >= 600_000, 'at least 10m: longer than any intake in flight')
        .describe('age before an unreferenced blob (or a staging file of a dead process) is removed; longer than any intake in flight'),
    })
    .prefault({})
    .describe('removing leftovers of faults: blobs no row points at (a transaction that failed after the bytes were in place) and staging files of processes that died; metric postroom_sweep_removed_total'),
});

export const parseSchema = z.strictObject({
  maxDepth: z
    .number()
    .int()
    .positive()
    .default(20)
    .describe('deepest MIME nesting parsed; a deeper message is kept with status raw and the reason (bounds the work a hostile message can cause)'),
  maxHeaderSize: size().default(256 * 1024).describe('a header block larger than this: the message is kept with status raw'),
  maxFilenameLength: z
    .number()
    .int()
    .min(16)
    .max(255)
    .default(200)
    .describe('attachment file names are cut to this many characters after sanitising (file systems allow 255 bytes); the original name is kept as metadata'),
  workers: z
    .number()
    .int()
    .positive()
    .default(2)
    .describe('messages parsed at once (each holds its message\'s parts in memory); besides them, up to 16 small ones (256 KiB or less) just received are parsed in a lane of their own'),
  pollInterval: duration()
    .default(2_000)
    .describe('how often to look for messages `postroom deliver` or `postroom fetch` kept in this store from another process (0 = only at start)'),
  thread: z
    .boolean()
    .default(true)
    .describe('parse messages of up to 4 MiB on a worker thread beside the event loop that answers SMTP, which at high intake rates would otherwise slow every session; false: parse on the loop'),
});

export const logSchema = z.strictObject({
  level: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('least severe level logged: debug or trace while diagnosing, warn or error to log less'),
  file: z
    .strictObject({
      dir: z.string().min(1).describe('directory of the files (relative: to the working directory); created if missing'),
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info').describe("this file's own least severe level"),
      keepDays: z.number().int().min(1).default(14).describe('files of days older than this are removed'),
    })
    .optional()
    .describe("also log to a file per day, DIR/smtp_YYMMDD.log (the fax gateway's names), with its own level; level above is then standard output's"),
});

export const deliverySchema = z.strictObject({
  workers: z
    .number()
    .int()
    .positive()
    .default(16)
    .describe('deliveries run at once by this node; each holds a slot while its target runs, so with a target taking 100 ms, 16 carry 160 messages/s'),
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

export const authSchema = z.strictObject({
  enabled: z
    .boolean()
    .default(false)
    .describe('true: verify SPF, DKIM, ARC and DMARC of every message taken by SMTP at the end of DATA, keep the verdict with the message and add our Authentication-Results header to forwards and relays (docs/authentication.md)'),
  dnsTimeout: duration()
    .default(2_000)
    .describe('the longest verification may hold the reply after DATA; DNS not answered by then gives temperror (kept with the message), never a refusal or a lost message'),
  dnsServers: z
    .array(z.string().min(1))
    .optional()
    .describe("name servers asked (IP or IP:port); default: the system's (/etc/resolv.conf)"),
  cacheTtl: duration().default(300_000).describe('longest a DNS answer (or a definite no-such-record) is reused'),
  cacheSize: z.number().int().positive().default(10_000).describe('most DNS answers cached; the oldest go first'),
  minKeyBits: z.number().int().min(512).default(1024).describe('smallest RSA key a DKIM or ARC signature may use (RFC 8301 §3.2); a smaller one fails'),
  trustedHosts: z
    .array(z.string().min(1))
    .default([])
    .describe("authserv-ids (host names) whose Authentication-Results are believed for mail not taken by SMTP (fetched by IMAP/POP3, piped, posted): the topmost header by one of them is the message's verdict. Never list a name a sender could write: only hosts inside your boundary (RFC 8601 §5)"),
});

export const configSchema = z.strictObject({
  dataDir: z
    .string()
    .default('./data')
    .describe('directory of the SQLite database, the blob files, the generated API token and secret key; relative: to the working directory'),
  smtp: smtpSchema.prefault({}).describe('the SMTP listener: the front door for mail from MTAs and applications'),
  http: httpSchema.prefault({}).describe('the HTTP listener: the API (/api/v1, described by /api/v1/openapi.json), WebDAV, health and metrics'),
  store: storeSchema.prefault({}).describe('where messages are kept: SQLite or PostgreSQL, and the raw bytes'),
  parse: parseSchema.prefault({}).describe('parsing kept messages into parts (after the SMTP reply, from the store)'),
  log: logSchema.prefault({}).describe('logging: pino JSON lines on standard output'),
  // Each `deliver` item is checked by its target kind's own params schema.
  routes: makeRoutesSchema(targets).default([]),
  delivery: deliverySchema
    .prefault({})
    .describe('the delivery queue: planned deliveries are stored, leased by workers and retried per route'),
  groups: groupsSchema.prefault({}).describe('discussion groups: the SMTP relay posts go out through, the bounce limit'),
  objects: objectsSchema.prefault({}).describe('addresses of built-in objects: PREFIX+<id>@DOMAIN, PREFIX+wf+<name>@DOMAIN'),
  secretKey: z
    .string()
    .min(16)
    .optional()
    .describe('encrypts mail-account passwords at rest (AES-256-GCM); default: generated once into DATA_DIR/secret-key. Nodes sharing a store must share it'),
  mail: mailSchema.prefault({}).describe('fetching from mail accounts (IMAP, POP3); the accounts themselves are kept in the store'),
  retention: retentionSchema.prefault({}),
  auth: authSchema.prefault({}).describe('sender authentication verdicts: SPF (RFC 7208), DKIM (RFC 6376), DMARC (RFC 7489), ARC (RFC 8617)'),
}).transform((cfg, ctx) => {
  // `objects:` adds its two routes after the configured ones; their names are then taken.
  if (cfg.store.blobs === 's3' && !cfg.store.s3) {
    ctx.addIssue({ code: 'custom', message: 'store.blobs: s3 needs store.s3 with at least a bucket', path: ['store', 's3'] });
  }
  const added = objectRoutes(cfg.objects, makeRouteSchema(targets));
  cfg.routes.forEach((r, i) => {
    if (added.length && (OBJECT_ROUTE_NAMES as readonly string[]).includes(r.name)) {
      ctx.addIssue({ code: 'custom', message: `route name '${r.name}' is taken by the objects: section`, path: ['routes', i, 'name'] });
    }
  });
  return { ...cfg, routes: [...cfg.routes, ...added] };
});

/** One route, as in `routes:` and as POST /api/v1/routes takes it: the same schema for both. */
export const routeSchema = makeRouteSchema(targets);

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type SmtpConfig = Config['smtp'];
export type HttpConfig = Config['http'];
export type AuthConfig = Config['auth'];
