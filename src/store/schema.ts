import type { Generated } from 'kysely';

/** Row types of every table, as Kysely sees them. Timestamps are ISO-8601 UTC strings. */

export interface MessagesTable {
  id: string;
  ingress: string;
  mail_from: string;
  /** JSON array of envelope recipients. */
  rcpt_to: string;
  client_ip: string | null;
  helo: string | null;
  auth_user: string | null;
  received_at: string;
  message_id: string | null;
  subject: string | null;
  from_addr: string | null;
  date: string | null;
  size: number;
  raw_sha256: string;
  trace: string | null;
  /** Message-ID + content + recipients; unique, so a retransmission is kept once. */
  dedup_key: string | null;
  /** Routing and delivery: received → routed → delivered | failed (sending → sent | error for our own). */
  status: string;
  /** Why routing or delivery went wrong (or that no route took the message). */
  error: string | null;
  /** pending | parsed | raw (could not be parsed: kept whole as one raw part); never changed by delivery. */
  parse_status: string;
  /** Why the message could not be parsed (parse_status raw). */
  parse_error: string | null;
  /** JSON array of what was wrong with the message though it parsed (core/mime-defects.ts); null until parsed. */
  defects: string | null;
  /** Kept by a process that parses nothing itself (`fetch`): a running server parses it at its next poll. */
  handoff: string | null;
  /** JSON array of [name, value] in order, set once parsed. */
  headers: string | null;
  /** JSON: { from, to, cc, replyTo } address lists, set once parsed. */
  addresses: string | null;
  /** When parsing finished (parts stored, or status raw); null until then. */
  parsed_at: string | null;
  updated_at: string;
  /** Post time an ingress asked for (`postroom deliver -t message`: the Date: header), else null. */
  post_time: string | null;
  /** sha256 of the message without its trace fields (mime/content-fingerprint.ts); null before it existed. */
  content_sha256: string | null;
  /** The earlier copy of this message (the same one through another relay) that took its deliveries. */
  duplicate_of: string | null;
  /** When an operator pinned it: retention never removes a pinned message. */
  pinned_at?: string | null;
  /** JSON AuthVerdict (core/auth.ts): SPF, DKIM, DMARC and ARC results; null when not verified. */
  auth: string | null;
}

/** The text a search looks in, per parsed message, lower case (store/search-index.ts). */
export interface MessageTextTable {
  /** SQLite: the rowid the FTS5 index (message_search) points at. */
  doc: Generated<number>;
  message: string;
  subject: string;
  /** From: as written, and MAIL FROM. */
  sender: string;
  /** To, Cc and Reply-To addresses (names and addresses). */
  recipients: string;
  /** RCPT TO, the envelope recipients. */
  rcpt: string;
  /** The start of the text body (SEARCH_BODY_CHARS). */
  body: string;
}

/** One recipient's outcome within a delivery that takes several recipients at once. */
export interface DeliveryRecipientsTable {
  delivery: string;
  /** As the envelope names it, lower case. */
  recipient: string;
  /** done | deferred | failed */
  status: string;
  /** The remote reply (or the connection error) that decided it. */
  reply: string | null;
  enhanced_status: string | null;
  updated_at: string;
}

/** One (Message-ID, content, recipient, route) delivered within the dedup window. */
export interface DeliveryClaimsTable {
  /** sha256 of Message-ID, content_sha256, recipient (lower case) and route. */
  key: string;
  /** The message whose plan took it. */
  message: string;
  created_at: string;
}

export interface PartsTable {
  id: string;
  message: string;
  idx: number;
  kind: string;
  filename: string | null;
  original_filename: string | null;
  content_type: string;
  content_id: string | null;
  size: number;
  sha256: string;
}

export interface BlobChunksTable {
  sha256: string;
  seq: number;
  data: Uint8Array;
}

export interface BlobsTable {
  sha256: string;
  size: number;
  created_at: string;
}

export interface DeliveriesTable {
  /** Derived from message + route + target index: the idempotency key. */
  id: string;
  message: string;
  route: string;
  target_index: number;
  kind: string;
  /** JSON of the target params. */
  params: string;
  /** JSON array of envelope recipients. */
  recipients: string;
  /** JSON object of route captures (the first recipient's). */
  captures: string;
  /** JSON object: each recipient's own captures; null on rows planned before it existed. */
  recipient_captures: string | null;
  /** Where the delivery lands as its target names it (part of the id); '' when it takes several recipients. */
  destination: string;
  /** pending | done | failed | dead */
  status: string;
  /** Attempts started since the delivery was planned or last retried by hand. */
  attempts: number;
  first_attempt_at: string | null;
  next_attempt_at: string;
  lease_owner: string | null;
  lease_until: string | null;
  last_error: string | null;
  /** JSON receipt of the successful attempt. */
  receipt: string | null;
  created_at: string;
  updated_at: string;
}

export interface DeliveryAttemptsTable {
  id: string;
  delivery: string;
  n: number;
  started_at: string;
  finished_at: string | null;
  /** done | transient | permanent | dead; null while running (or when the worker died). */
  outcome: string | null;
  error: string | null;
  enhanced_status: string | null;
  /** When the next attempt was scheduled, for a transient outcome. */
  next_attempt_at: string | null;
}

/** One row per node: the last write GET /readyz made to prove the store takes writes. */
export interface HealthProbesTable {
  node: string;
  probed_at: string;
}

/** A route's target held back: its deliveries stay pending and are not leased until resumed. */
export interface PausedTargetsTable {
  route: string;
  target_index: number;
  kind: string;
  /** Where the target points (a webhook's origin), for the operator. */
  destination: string | null;
  /** Why: the endpoint's answer (410 Gone) or the operator's words. */
  reason: string;
  /** The delivery whose answer paused it, if any. */
  delivery: string | null;
  paused_at: string;
}

/** A built-in object (folder, document, workflow, process): one numeric id sequence for all. */
export interface ObjectsTable {
  id: Generated<number>;
  /** folder | document | workflow | process */
  kind: string;
  name: string;
  parent: number | null;
  /** JSON object of the object's own settings (a folder's collectMIMEType, …). */
  properties: string;
  created_at: string;
  updated_at: string;
}

export interface AclTable {
  object: number;
  /** 'network' (unauthenticated intake) or an SMTP AUTH user name. */
  principal: string;
  /** Letters: r read, w write, d delete, a administer. */
  permissions: string;
}

export interface ObjectPropertiesTable {
  object: number;
  namespace: string;
  name: string;
  value: string;
}

export interface DocumentsTable {
  id: number;
  sha256: string;
  size: number;
  content_type: string;
  /** The kept message it came from, if any. */
  message: string | null;
  /** The delivery that filed it (a retried delivery files nothing twice). */
  delivery: string | null;
}

export interface WorkflowsTable {
  id: number;
  name: string;
  /** JSON: { type: 'text/plain' } or { type: 'application/pdf' } (first attachment of that type). */
  input: string;
  /** JSON: { command: string[], timeout, maxOutput, env } or { url, timeout, maxOutput, allowPrivate }. */
  action: string;
}

export interface ProcessesTable {
  id: number;
  workflow: number;
  message: string | null;
  delivery: string | null;
  /** queued | running | completed | failed */
  state: string;
  /** For failed: transient (the delivery retries it) or permanent. */
  disposition: string | null;
  input_type: string | null;
  input_sha256: string | null;
  input_size: number | null;
  /** Document id holding stdout / the response body. */
  output: number | null;
  exit_code: number | null;
  /** Short human text: 'exit 0', 'HTTP 200', 'killed after 30000 ms'. */
  status: string | null;
  error: string | null;
  attempts: number;
  started_at: string | null;
  finished_at: string | null;
}

/** Server settings shared by mail accounts: where to fetch (IMAP or POP3) and where to send (SMTP). */
export interface MailProfilesTable {
  id: string;
  name: string;
  /** imap | pop3 */
  protocol: string;
  host: string;
  port: number;
  /** none | starttls | tls */
  tls: string;
  smtp_host: string | null;
  smtp_port: number | null;
  smtp_tls: string | null;
  /** JSON object of options (after_read_timeout, tls_verify, …). */
  /** JSON object: the operator's own properties (mail.model), null when none were set. */
  properties?: string | null;
  options: string;
  created_at: string;
  updated_at: string;
}

export interface MailAccountsTable {
  id: string;
  profile: string;
  name: string;
  /** The account's mail address: the default routing recipient and sender. */
  address: string | null;
  username: string;
  /** AES-256-GCM ciphertext (domain/accounts/secret-box.ts), bound to the account id. */
  password_enc: string;
  /** JSON object: the operator's own properties (mail.model), null when none were set. */
  properties?: string | null;
  options: string;
  created_at: string;
  updated_at: string;
}

export interface MailFoldersTable {
  id: string;
  account: string;
  path: string;
  special_use: string | null;
  enabled: number;
  delete_on_server: number;
  move_on_success: string | null;
  move_on_failure: string | null;
  route: string | null;
  recipient: string | null;
  /** JSON object: the operator's own properties (mail.model), null when none were set. */
  properties?: string | null;
  options: string;
  uidvalidity: string | null;
  last_uid: number;
  fetched: number;
  last_ok_at: string | null;
  last_error: string | null;
  last_error_at: string | null;
  consecutive_failures: number;
  created_at: string;
  updated_at: string;
}

export interface MailLinksTable {
  message: string;
  account: string;
  folder: string | null;
  /** fetched | outbound */
  kind: string;
  uid: number | null;
  /** The route named by the folder (or `postroom fetch --route`), if any. */
  route: string | null;
  /** JSON: the targets `postroom fetch` named inline (a route's `deliver` list), if any. */
  deliver?: string | null;
  created_at: string;
}

/** The operator's own properties of a message (mail.model.messages), JSON. */
export interface MessagePropertiesTable {
  message: string;
  properties: string;
}

export interface Pop3SeenTable {
  folder: string;
  uidl: string;
  message: string | null;
  /** kept | failed */
  outcome: string;
  seen_at: string;
}

/** A discussion group (an object): its list address and policies. */
export interface GroupsTable {
  id: number;
  /** Lower-cased LOCAL@DOMAIN. */
  address: string;
  /** members | anyone | moderated */
  posting: string;
  /** group | sender */
  reply_to: string;
}

export interface GroupMembersTable {
  group_id: number;
  /** Lower-cased address. */
  email: string;
  name: string | null;
  /** 1: copies of posts are relayed to this member. */
  delivery: number;
  bounces: number;
  /** 1: over the bounce limit; nothing is relayed until reset. */
  suspended: number;
  last_bounce_at: string | null;
  created_at: string;
}

export interface GroupPostsTable {
  /** The post's object id. */
  id: number;
  group_id: number;
  message: string;
  delivery: string;
  message_id: string | null;
  subject: string | null;
  /** Subject without Re:/Fwd:/[list] prefixes, lower-cased: the fallback for threading. */
  thread_subject: string | null;
  author: string | null;
  /** The first post of the thread (its own id for a new thread). */
  thread: number;
  parent: number | null;
  /** held (moderation) | approved | relayed | rejected */
  status: string;
  posted_at: string;
  /** The bytes the post was made of (the message's raw blob), kept by the post itself: the message may be removed by retention. */
  raw_sha256?: string | null;
}

/** A Message-ID a post names: rank 0 is its first choice of parent (In-Reply-To, then References nearest first). */
export interface GroupPostRefsTable {
  post: number;
  rank: number;
  group_id: number;
  message_id: string;
}

export interface GroupRelaysTable {
  post: number;
  email: string;
  /** sent | failed */
  status: string;
  response: string | null;
  at: string;
}

/** Someone who signs in to the console or owns API tokens. */
export interface UsersTable {
  id: string;
  name: string;
  /** admin | operator | viewer */
  role: string;
  /** `scrypt$N$r$p$salt$hash` (base64): salt and cost travel with the hash. */
  password_hash: string;
  /** 1: cannot sign in; sessions and tokens stop working. */
  disabled: number;
  created_at: string;
  updated_at: string;
}

/** A signed-in browser. The cookie holds the secret; only its sha256 is kept (the id). */
export interface SessionsTable {
  id: string;
  user: string;
  /** Sent back in x-csrf-token (or _csrf) with every state-changing request. */
  csrf_token: string;
  created_at: string;
  /** Moves forward with use; idle longer than http.sessions.idleTimeout and the session is gone. */
  last_seen_at: string;
  /** The absolute end (created_at + http.sessions.maxAge), however active. */
  expires_at: string;
}

/** A per-user API token; only its sha256 is kept. */
export interface ApiTokensTable {
  id: string;
  user: string;
  name: string;
  /** read | write */
  scope: string;
  hash: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** One state-changing action: who, what, when, from where. */
export interface AuditLogTable {
  id: Generated<number>;
  at: string;
  /** A user name, or `api-token` (POSTROOM_API_TOKEN), or `cli:<os user>`. */
  actor: string;
  action: string;
  object: string | null;
  /** JSON object. */
  detail: string | null;
  ip: string | null;
}

/** A route managed through the API (migration 0027). */
export interface ApiRoutesTable {
  name: string;
  version: number;
  /** JSON: the route as sent, in the config file's shape. */
  definition: string;
  updated_by: string;
  updated_at: string;
}

/** Every version of an API route: create, update, delete. */
export interface RouteVersionsTable {
  name: string;
  version: number;
  op: 'create' | 'update' | 'delete';
  /** JSON; null for a delete. */
  definition: string | null;
  actor: string;
  at: string;
}

/** One row (id 1): raised by every change of an API route; nodes poll it. */
export interface RoutesStateTable {
  id: number;
  version: number;
}

export interface Database {
  messages: MessagesTable;
  message_text: MessageTextTable;
  parts: PartsTable;
  blobs: BlobsTable;
  blob_chunks: BlobChunksTable;
  deliveries: DeliveriesTable;
  delivery_claims: DeliveryClaimsTable;
  delivery_recipients: DeliveryRecipientsTable;
  delivery_attempts: DeliveryAttemptsTable;
  paused_targets: PausedTargetsTable;
  health_probes: HealthProbesTable;
  objects: ObjectsTable;
  groups: GroupsTable;
  group_members: GroupMembersTable;
  group_posts: GroupPostsTable;
  group_post_refs: GroupPostRefsTable;
  group_relays: GroupRelaysTable;
  acl: AclTable;
  object_properties: ObjectPropertiesTable;
  documents: DocumentsTable;
  workflows: WorkflowsTable;
  processes: ProcessesTable;
  mail_profiles: MailProfilesTable;
  mail_accounts: MailAccountsTable;
  mail_folders: MailFoldersTable;
  mail_links: MailLinksTable;
  message_properties: MessagePropertiesTable;
  message_flags: MessageFlagsTable;
  import_progress: ImportProgressTable;
  pop3_seen: Pop3SeenTable;
  users: UsersTable;
  sessions: SessionsTable;
  api_tokens: ApiTokensTable;
  audit_log: AuditLogTable;
  api_routes: ApiRoutesTable;
  route_versions: RouteVersionsTable;
  routes_state: RoutesStateTable;
}

/** Flags a message had where it was imported from (IMAP system flag names, JSON array). */
export interface MessageFlagsTable {
  message: string;
  flags: string;
}

/** How far `postroom import` got in one file (see migrations/0026-import.ts). */
export interface ImportProgressTable {
  /** 'mbox:' and the file's real path. */
  source: string;
  /** Offset of the first message not yet known to be kept. */
  position: number;
  /** sha256 of the bytes just before `position` (up to 4 KiB): the same file, not another under that name. */
  tail_sha256: string;
  /** Messages the run that saved it had read (all sources): for a person looking at the table. */
  messages: number;
  updated_at: string;
}

export type Dialect = 'sqlite' | 'postgres';
export type { Generated };
