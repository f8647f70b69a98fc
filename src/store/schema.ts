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

export interface Database {
  messages: MessagesTable;
  parts: PartsTable;
  blobs: BlobsTable;
  blob_chunks: BlobChunksTable;
}

export type Dialect = 'sqlite' | 'postgres';
export type { Generated };
