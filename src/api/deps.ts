import type { HttpConfig } from '../config/schema.js';
import { mailError } from '../core/errors.js';
import type { RecipientCheck } from '../core/message.js';
import type { MailConfig } from '../domain/accounts/config.js';
import type { SecretBox } from '../domain/accounts/secret-box.js';
import type { ObjectsConfig } from '../domain/objects/config.js';
import type { Accept } from '../intake/accept.js';
import type { Router } from '../routing/router.js';
import type { RouteSource } from '../routing/live.js';
import type { ReloadResult } from '../config/reload.js';
import type { Db } from '../store/db.js';
import type { BlobStore } from '../store/ports.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';

/** Everything the HTTP API needs; later issues add optional fields (intake, router, queue…). */
export interface ApiDeps {
  config: HttpConfig;
  db: Db;
  blobs: BlobStore;
  log: Logger;
  metrics: Metrics;
  token: string;
  /** `objects:` config, for the addresses shown with folders and workflows (absent: none shown). */
  objects?: ObjectsConfig;
  /** Told when a delivery was replayed (or a paused target resumed) by hand, so a worker in this process runs it at once. */
  onDeliveryRetry?: (deliveryId: string) => void;
  /** The intake door and the RCPT-time checks, for POST /api/v1/inbound (absent: it answers 503 4.3.5). */
  intake?: InboundDeps;
  /** Mail accounts: the secret box, fetch settings, and how to tell the fetcher and worker about changes (absent: /api/v1/email answers 503). */
  mail?: MailApiDeps;
  /** The router, for GET /api/v1/routes and the route tester (absent: they answer 503). */
  router?: Router;
  /** Routes managed through the API: where each route in force comes from, and how to apply a change here at once (absent: the listing shows no source, changes answer 503). */
  routing?: RoutingApiDeps;
  /** Read the config file again (POST /api/v1/system/reload; absent: 503). */
  reload?: () => Promise<ReloadResult>;
  /** Told of each message kept in this process, for the live list (GET /api/v1/messages/events). */
  onStored?: (listener: (id: string) => void) => () => void;
  /** Where this process listens, for GET /api/v1/system (absent: the HTTP listener as configured). */
  listeners?: () => { kind: string; address: string }[];
  /** What GET /readyz checks beyond the store (absent: the store only, this host's probe row). */
  readiness?: Readiness;
}

/** The state GET /readyz reports, from the running Postroom. */
export interface Readiness {
  /** This node's name in `health_probes` (one row each). */
  node: string;
  /** Every listener this process should have, and whether it accepts connections now. */
  listeners(): { kind: string; up: boolean }[];
  /** True from the moment stop() begins: take this node out of rotation before its listeners close. */
  stopping(): boolean;
}

/** What the HTTP intake (POST /api/v1/inbound) needs from a running Postroom. */
export interface InboundDeps {
  accept: Accept;
  /** The same RCPT-time checks the SMTP listener runs (domains, routes, targets). */
  recipientCheck: RecipientCheck;
  requireMessageId: boolean;
  trace: boolean;
  /** The address of a group named by id (`list=12345`); NOT_FOUND-like 5.1.1 when there is none. */
  resolveList?: (list: string) => Promise<string>;
}

/** What /api/v1/email needs beyond the common deps. */
export interface MailApiDeps {
  box: SecretBox;
  config: MailConfig;
  /** Our host name, for the Message-ID of outbound mail. */
  hostname: string;
  /** Folders changed: the fetcher in this process rescans now (others at their next rescan). */
  refresh(): void;
  /** An outbound message was queued: the delivery worker looks now. */
  wake(): void;
  /**
   * An outbound message (sent or draft) was kept: parse it now, through the same parser as
   * received mail (mime/parse-and-store.ts), so its /html, /attachments and /inlines answer
   * like a received message's. Unset: the parse poll takes it within a minute, or the next start.
   */
  parse?(id: string): void;
}

/** The mail deps, or 503 when this server was built without them. */
export function mailDeps(deps: ApiDeps): MailApiDeps {
  if (!deps.mail) throw mailError('CONFIG', 'mail accounts are not available on this server');
  return deps.mail;
}

/** What /api/v1/routes needs to manage routes in the store. */
export interface RoutingApiDeps {
  /** The source of each route in force (file, or API with its version). */
  sources(): ReadonlyMap<string, RouteSource>;
  /** Names of the config file's routes: read-only through the API. */
  fileRoutes(): ReadonlySet<string>;
  /** Apply the routes in the store now on this node (others follow at their next poll). */
  refresh(): Promise<void>;
}
