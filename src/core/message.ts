import type { MimeDefect } from './mime-defects.js';
import type { AuthVerdict } from './auth.js';
/** The shapes a message takes on its way through Postroom. */

/** How the message reached us, as the ingress saw it. Rules route on this, never only on To:. */
export interface Envelope {
  /** Envelope sender; '' for the null sender <>. */
  mailFrom: string;
  rcptTo: string[];
  /** 'smtp' | 'pipe' | 'http' | 'imap' | 'pop3' */
  ingress: string;
  clientIp?: string;
  clientHostname?: string;
  helo?: string;
  authUser?: string;
  /** TLS protocol when the session was encrypted, for the trace header. */
  tls?: string;
  receivedAt: Date;
  /** Post time the ingress asked for: 'message' takes the Date: header (`postroom deliver -t message`). */
  timeSource?: 'server' | 'message';
  /**
   * The routing generation that answered this envelope's RCPT TO (an SMTP session keeps the
   * one in force when it began): the message is planned by the same routes, so a reload in the
   * middle of a session does not route its mail by rules it was never checked against. Not
   * stored: after a restart the routes in force plan it.
   */
  routeGeneration?: number;
}

/**
 * A message's statuses with a meaning of Postroom's (routing, delivery, sending). `kept`: kept
 * and never routed (`postroom import --no-route`), an archive moved in, not mail to act on.
 * `held`: a delivery is quarantined (a route's authFailure) and waits to be released.
 */
export const MESSAGE_STATUSES = ['received', 'kept', 'routed', 'held', 'delivered', 'failed', 'rejected', 'draft', 'sending', 'sent', 'error'] as const;

export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

/** How parsing went: not yet, into parts, or not at all (kept whole as one raw part). */
export type ParseStatus = 'pending' | 'parsed' | 'raw';

/**
 * text/html: the message's readable bodies (UTF-8, inline text parts joined as mailparser reads
 * them); body: one inline text part as sent (transfer encoding undone, its declared charset in
 * its content type), written when the message has more than one or /text would lose its charset;
 * attachment/inline: files; raw: the whole message when it could not be parsed.
 */
export type PartKind = 'text' | 'html' | 'body' | 'attachment' | 'inline' | 'raw';

/** A message row as kept in the store. */
export interface StoredMessage {
  id: string;
  ingress: string;
  mailFrom: string;
  rcptTo: string[];
  clientIp: string | null;
  helo: string | null;
  authUser: string | null;
  receivedAt: string;
  messageId: string | null;
  subject: string | null;
  from: string | null;
  date: string | null;
  size: number;
  rawSha256: string;
  /** Our Received: trace header (with CRLF), served before the raw bytes; null if disabled. */
  trace: string | null;
  /** Routing and delivery (received → routed → delivered | failed); never the parse outcome. */
  status: MessageStatus;
  /** Why routing or delivery went wrong. */
  error: string | null;
  parseStatus: ParseStatus;
  /** Why the message could not be parsed (parseStatus raw). */
  parseError: string | null;
  /** What was wrong with the message though it parsed (core/mime-defects.ts names); empty when clean or not parsed. */
  defects?: MimeDefect[];
  /** True when intake found this exact message already kept and returned the earlier row. */
  duplicate?: boolean;
  /** sha256 of the message without its trace fields (the same message through another relay has the same). */
  contentSha256?: string | null;
  /** The earlier copy, through another relay, that took this message's deliveries; null if none. */
  duplicateOf?: string | null;
  /** When an operator pinned it (retention never removes it); null when not pinned. */
  pinnedAt?: string | null;
  /** Sender authentication verdict (SPF, DKIM, DMARC, ARC); null when not verified. */
  auth?: AuthVerdict | null;
}

/** One part of a parsed message. */
export interface StoredPart {
  id: string;
  messageId: string;
  idx: number;
  kind: PartKind;
  /** Sanitised file name, safe for a file system and a Content-Disposition header. */
  filename: string | null;
  /** The name the sender gave, kept as metadata only. */
  originalFilename: string | null;
  contentType: string;
  contentId: string | null;
  size: number;
  sha256: string;
}

/** A header line kept in order: [name as sent, unfolded value]. */
export type HeaderLine = [string, string];

/** What is known of a session when a recipient is offered (RCPT TO, or its equivalent). */
export interface RcptContext {
  ingress: string;
  mailFrom: string;
  /** Recipients already accepted in this transaction. */
  accepted: string[];
  clientIp?: string;
  clientHostname?: string;
  authUser?: string;
  /** The client is inside the listener's allowlist (or authenticated). */
  trusted: boolean;
  /**
   * The From: address, when the ingress has the header before it asks (the MTA pipe) and the
   * envelope sender is <>: a group then checks membership on it, as GroupServer does.
   */
  headerFrom?: string;
  /** The client is on a route's `match.clients` only, not on the listener's list: only routes listing clients may take it. */
  routeListedOnly?: boolean;
}

/** What accepting a recipient asks of the message that follows (checked while DATA streams). */
export interface RcptVerdict {
  /** A target of this recipient refuses mail without Message-ID (folders): 550 5.6.0 at DATA. */
  requireMessageId?: boolean;
}

/**
 * Decides, before any data is sent, whether a recipient is taken. Throws a MailError
 * (550 5.1.1 unknown, 554 5.7.1 relay, 550 5.7.1 not allowed); resolves to accept, with what
 * the message must then satisfy. Routing adds its own check after the listener's domain check.
 */
export type RecipientCheck = (rcpt: string, ctx: RcptContext) => Promise<RcptVerdict | void>;
