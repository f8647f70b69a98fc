import type { SearchTerm } from '../core/message-search.js';
import type { StoredMessage } from '../core/message.js';

/** What a message list asks for (store/messages.ts listMessagePage answers it, on the loop or the read thread). */
export interface MessageFilter {
  since?: string;
  until?: string;
  /** Substring of From: or MAIL FROM. */
  from?: string;
  /** Substring of an envelope recipient. */
  rcpt?: string;
  /** Substring of the subject. */
  subject?: string;
  /** Routing and delivery status; `raw` is taken as `parse: 'raw'` (whatever the delivery state). */
  status?: string;
  /** How parsing went: pending, parsed, raw. */
  parse?: string;
  ingress?: string;
  /** Fetched from (or sent through) this mail account. */
  account?: string;
  /** Fetched from this mail-account folder. */
  folder?: string;
  /** Parsed search terms (core/message-search.ts), all of which must hold. */
  search?: readonly SearchTerm[];
  /** This message only (does it match the rest of the filter?). */
  id?: string;
  /** Return messages with id below this (newest first). */
  before?: string;
  /** Return messages with id above this (what arrived since; the live list). */
  after?: string;
  /** Return messages with id at or above this (the floor of a bounded search window). */
  atLeast?: string;
  limit: number;
  /** Oldest first (page on with `after`): `postroom export` writes mail in the order it arrived. */
  oldestFirst?: boolean;
  /**
   * Read at most this many rows (newest first) when the search index cannot name the matches
   * (every text term common, shorter than three characters, or negated); `floor` then says
   * where the window ended.
   */
  window?: number;
}

/** A page of messages, and where a bounded walk stopped (older mail may still match below it). */
export interface MessagePage {
  rows: StoredMessage[];
  floor?: string;
}

