import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../store/schema.js';

/**
 * Row types of the tracker's tables (migration 0005). They live beside the tracker rather than
 * in store/schema.ts so the tracker is one folder; `tq` gives a handle that knows both.
 */

export interface TrackerUsersTable {
  id: string;
  login: string;
  /** Lower-cased. */
  email: string;
  name: string;
  created_at: string;
}

export interface TrackerProjectsTable {
  /** Also an objects.id (kind `project`). */
  id: number;
  identifier: string;
  name: string;
}

export interface TrackerMembersTable {
  project: number;
  user_id: string;
}

export interface TrackerEnumsTable {
  id: string;
  /** type | status | priority */
  kind: string;
  name: string;
  position: number;
  is_default: number;
}

export interface TrackerNamedTable {
  id: string;
  project: number;
  name: string;
}

export interface TrackerCustomFieldsTable {
  id: string;
  name: string;
  /** string | integer | date | list */
  format: string;
  /** JSON array of strings. */
  possible_values: string;
}

export interface TrackerWorkPackagesTable {
  /** Also an objects.id (kind `work_package`). */
  id: number;
  project: number;
  subject: string;
  description: string;
  type: string;
  status: string;
  priority: string;
  author: string | null;
  assignee: string | null;
  category: string | null;
  version: string | null;
  start_date: string | null;
  due_date: string | null;
  done_ratio: number;
  message: string | null;
  delivery: string | null;
  created_at: string;
  updated_at: string;
}

export interface TrackerCustomValuesTable {
  work_package: number;
  field: string;
  value: string;
}

export interface TrackerWatchersTable {
  work_package: number;
  user_id: string;
}

export interface TrackerJournalsTable {
  id: string;
  work_package: number;
  user_id: string | null;
  notes: string;
  /** JSON array of { field, old, new }. */
  changes: string;
  message: string | null;
  delivery: string | null;
  created_at: string;
}

export interface TrackerAttachmentsTable {
  id: string;
  work_package: number;
  journal: string | null;
  filename: string;
  content_type: string;
  size: number;
  sha256: string;
  created_at: string;
}

export interface TrackerMailIdsTable {
  message_id: string;
  work_package: number;
  /** notification | incoming */
  kind: string;
  created_at: string;
}

export interface TrackerTables {
  tracker_users: TrackerUsersTable;
  tracker_projects: TrackerProjectsTable;
  tracker_members: TrackerMembersTable;
  tracker_enums: TrackerEnumsTable;
  tracker_categories: TrackerNamedTable;
  tracker_versions: TrackerNamedTable;
  tracker_custom_fields: TrackerCustomFieldsTable;
  tracker_work_packages: TrackerWorkPackagesTable;
  tracker_custom_values: TrackerCustomValuesTable;
  tracker_watchers: TrackerWatchersTable;
  tracker_journals: TrackerJournalsTable;
  tracker_attachments: TrackerAttachmentsTable;
  tracker_mail_ids: TrackerMailIdsTable;
}

export type TrackerDb = Database & TrackerTables;
export type TQ = Kysely<TrackerDb> | Transaction<TrackerDb>;

/** The store handle (or a transaction on it) typed with the tracker's tables too. */
export function tq(q: Kysely<Database> | Transaction<Database> | TQ): TQ {
  return q as unknown as TQ;
}
