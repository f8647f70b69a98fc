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
  status: string;
  error: string | null;
  /** JSON array of [name, value] in order, set once parsed. */
  headers: string | null;
  /** JSON: { from, to, cc, replyTo } address lists, set once parsed. */
  addresses: string | null;
  /** When parsing finished (parts stored, or status raw); null until then. */
  parsed_at: string | null;
  updated_at: string;
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
  /** JSON object of route captures. */
  captures: string;
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

export interface Database {
  messages: MessagesTable;
  parts: PartsTable;
  blobs: BlobsTable;
  blob_chunks: BlobChunksTable;
  deliveries: DeliveriesTable;
  delivery_attempts: DeliveryAttemptsTable;
}

export type Dialect = 'sqlite' | 'postgres';
export type { Generated };
