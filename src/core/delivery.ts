import type { Readable } from 'node:stream';
import type { ZodType } from 'zod';
import type { HeaderLine, StoredMessage, StoredPart } from './message.js';

/**
 * The contract between the router, the delivery queue and the targets. The router turns a
 * parsed message into PlannedDeliveries (stored); the queue leases them and calls
 * target.deliver; a target throws MailError (transient ⇒ retry, permanent ⇒ failed).
 */

/** One delivery the router decided on: which route, which target, with what captures. */
export interface PlannedDelivery {
  /** Route name from config. */
  route: string;
  /** Index of the target within the route's `deliver` list. */
  targetIndex: number;
  /** Target kind ('webhook', 'forward', 'spool', 'reject', 'discard', ...). */
  kind: string;
  /** Target params as configured (validated by the target's schema). */
  params: unknown;
  /**
   * Envelope recipients this delivery is for: several when the target takes them in one call
   * (`takesManyRecipients`) or when they resolve to the very same destination.
   */
  recipients: string[];
  /** Named captures of the recipient match and template placeholders (the first recipient's). */
  captures: Record<string, string>;
  /** Each recipient's own captures, by recipient (the first one's are also `captures`). */
  recipientCaptures?: Record<string, Record<string, string>>;
  /**
   * Where this delivery lands, as its target names it (a folder id, a group address, a
   * recipient): part of the delivery id, so each destination of one route is a delivery of
   * its own. Empty for targets that take several recipients at once.
   */
  destination?: string;
  /** Quarantined (a route's authFailure): kept as `held` with this reason, delivered only once released. */
  held?: string;
}

/** A message as targets see it: the stored row, its parts, headers, and a way to read bytes. */
export interface ParsedMessage {
  message: StoredMessage;
  headers: HeaderLine[];
  addresses: {
    from?: AddressLike[];
    to?: AddressLike[];
    cc?: AddressLike[];
    replyTo?: AddressLike[];
  };
  parts: StoredPart[];
  /** The raw bytes as received (no trace header). */
  openRaw(): Promise<Readable>;
  /** The trace header + raw bytes, as an MTA's mailbox would hold them. */
  openRawWithTrace(): Promise<Readable>;
  /** A part's bytes. */
  openPart(part: StoredPart): Promise<Readable>;
  /** The text/plain body (decoded), or null. */
  text(): Promise<string | null>;
  /** The text/html body (decoded), or null. */
  html(): Promise<string | null>;
}

export interface AddressLike {
  name: string;
  address: string;
}

/** What a delivery attempt knows besides the message. */
export interface DeliveryContext {
  /** Stable id: message + route + target; the idempotency key handed to every target. */
  deliveryId: string;
  attempt: number;
  route: string;
  recipients: string[];
  captures: Record<string, string>;
  /** Each recipient's own captures (a target taking several recipients reports them per recipient). */
  recipientCaptures: Record<string, Record<string, string>>;
  /** Aborted when the attempt's time is up or the worker stops. */
  signal: AbortSignal;
  /** Base URL of the API, for links in payloads. */
  publicUrl?: string;
  /** Per-recipient state across attempts, for a target that takes several recipients at once. */
  recipientOutcomes?: RecipientOutcomes;
  /**
   * Keep a DSN (RFC 3464) as a message with status `sending` and queue its delivery through the
   * outbound relay, in one transaction; resolves with its message id. One per delivery: a later
   * attempt of the same delivery gets the first one's id. Absent where nothing can keep one.
   */
  keepOutbound?(envelope: { mailFrom: string; rcptTo: string[] }, raw: Uint8Array): Promise<string>;
}

/** What became of one recipient of a delivery that takes several at once. */
export interface RecipientOutcome {
  recipient: string;
  status: 'done' | 'deferred' | 'failed';
  /** The remote reply or error that decided it. */
  reply: string | null;
  enhancedStatus: string | null;
}

/** Per-recipient state of one delivery, kept across its attempts. */
export interface RecipientOutcomes {
  /** What earlier attempts recorded, by recipient (lower case). */
  read(): Promise<Map<string, RecipientOutcome>>;
  /** Record outcomes (durably: a done recipient is never sent to again). */
  record(outcomes: RecipientOutcome[]): Promise<void>;
}

/** What a target reports on success, kept on the delivery row. */
export interface Receipt {
  /** Short human summary ('HTTP 200', '250 2.0.0 Ok: queued as ABC', 'wrote fax/0001.txt'). */
  summary: string;
  [key: string]: unknown;
}

/** A kind of destination. Registered in targets/index.ts (a plain Map<kind, Target>). */
export interface Target<P = unknown> {
  kind: string;
  /** Validates the route's params at config load. */
  params: ZodType<P>;
  /**
   * One call takes every recipient a route gives it (a webhook POST, an SMTP transaction with
   * several RCPT TO), each with its own captures. Otherwise each recipient is a delivery of its
   * own unless `destination` says two land in the very same place.
   */
  takesManyRecipients?: boolean;
  /**
   * Where a recipient's delivery lands (a folder id, a workflow, a group address), from the
   * route's params and the recipient's captures; recipients with the same destination share one
   * delivery. Default: the recipient itself. Must not look anything up: it is part of the
   * delivery id, which a later plan of the same message must derive again.
   */
  destination?(rcpt: string, params: P, captures: Record<string, string>): string;
  /** Refuses mail without Message-ID: ingresses then refuse it while DATA streams (550 5.6.0). */
  requiresMessageId?: boolean;
  /** RCPT-time check (the target object exists, the principal may write). Throws MailError. */
  check?(rcpt: string, params: P, ctx: { captures: Record<string, string>; authUser?: string; /** Envelope sender ('' for <>). */ mailFrom?: string; /** With <>: the From: address, when known before DATA. */ headerFrom?: string }): Promise<void>;
  /**
   * The delivery died (attempts or age used up after transient failures): tell whoever must
   * know (a DSN to the sender for the recipients still undelivered). Resolves with a note for
   * the delivery's error, e.g. the DSN's id.
   */
  dead?(msg: ParsedMessage, params: P, ctx: DeliveryContext, lastError: string): Promise<string | undefined>;
  /** Deliver; throws MailError (transient ⇒ retried, permanent ⇒ failed). */
  deliver(msg: ParsedMessage, params: P, ctx: DeliveryContext): Promise<Receipt>;
  /**
   * The remote end these params reach (a webhook's origin, a relay's host:port), shared by every
   * route pointing there. The worker limits how many deliveries run at once per endpoint and
   * pauses one that keeps failing, so a stuck endpoint cannot hold every worker. Local targets
   * leave it out: nothing remote to protect the others from. (Not `destination`, which is where
   * one recipient's delivery lands and is part of its id.)
   */
  endpoint?(params: P): string;
}
