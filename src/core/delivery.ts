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
  /** Envelope recipients this delivery is for (several recipients may map to one route). */
  recipients: string[];
  /** Named captures of the recipient match and template placeholders. */
  captures: Record<string, string>;
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
  /** Aborted when the attempt's time is up or the worker stops. */
  signal: AbortSignal;
  /** Base URL of the API, for links in payloads. */
  publicUrl?: string;
  /**
   * Keep a DSN (RFC 3464) as a message with status `sending` and queue its delivery through the
   * outbound relay, in one transaction; resolves with its message id. One per delivery: a later
   * attempt of the same delivery gets the first one's id. Absent where nothing can keep one.
   */
  keepOutbound?(envelope: { mailFrom: string; rcptTo: string[] }, raw: Uint8Array): Promise<string>;
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
  /** Refuses mail without Message-ID: ingresses then refuse it while DATA streams (550 5.6.0). */
  requiresMessageId?: boolean;
  /** RCPT-time check (the target object exists, the principal may write). Throws MailError. */
  check?(rcpt: string, params: P, ctx: { captures: Record<string, string>; authUser?: string; /** Envelope sender ('' for <>). */ mailFrom?: string }): Promise<void>;
  /** Deliver; throws MailError (transient ⇒ retried, permanent ⇒ failed). */
  deliver(msg: ParsedMessage, params: P, ctx: DeliveryContext): Promise<Receipt>;
  /**
   * The remote end these params reach (a webhook's origin, a relay's host:port), shared by every
   * route pointing there. The worker limits how many deliveries run at once per destination and
   * pauses one that keeps failing, so a stuck endpoint cannot hold every worker. Local targets
   * leave it out: nothing remote to protect the others from.
   */
  destination?(params: P): string;
}
