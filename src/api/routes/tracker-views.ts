import { z } from 'zod';

/** Shapes of the tracker API (users, projects, lists, custom fields, work packages with journals). */

export const TRACKER = '/api/v1/tracker';

export const Person = z.object({ id: z.string(), login: z.string(), name: z.string() });
export const UserView = z.object({ id: z.string(), login: z.string(), email: z.string(), name: z.string(), createdAt: z.string() });
export const ProjectView = z.object({ id: z.number().int().describe('object id (shared sequence)'), identifier: z.string(), name: z.string() });
export const NamedView = z.object({ id: z.string(), project: z.number().int(), name: z.string() });
export const ProjectDetail = ProjectView.extend({
  members: z.array(Person),
  categories: z.array(NamedView),
  versions: z.array(NamedView),
});
export const EnumView = z.object({ id: z.string(), kind: z.enum(['type', 'status', 'priority']), name: z.string(), position: z.number().int(), isDefault: z.boolean() });
export const CustomFieldView = z.object({ id: z.string(), name: z.string(), format: z.enum(['string', 'integer', 'date', 'list']), possibleValues: z.array(z.string()) });

export const ChangeView = z.object({ field: z.string(), old: z.string().nullable(), new: z.string().nullable() });
export const JournalView = z.object({
  id: z.string(),
  user: Person.nullable().describe('null: Anonymous (a route with no_permission_check, an unknown sender)'),
  notes: z.string(),
  changes: z.array(ChangeView),
  message: z.string().nullable().describe('the kept message it came from'),
  createdAt: z.string(),
});
export const AttachmentView = z.object({
  id: z.string(),
  journal: z.string().nullable(),
  filename: z.string().describe('sanitised'),
  contentType: z.string(),
  size: z.number().int(),
  sha256: z.string(),
  url: z.string(),
  createdAt: z.string(),
});
export const WorkPackageView = z.object({
  id: z.number().int().describe('object id: `[#id]` in a subject names it'),
  project: ProjectView,
  subject: z.string(),
  description: z.string(),
  type: z.string(),
  status: z.string(),
  priority: z.string(),
  author: Person.nullable(),
  assignee: Person.nullable(),
  category: z.string().nullable(),
  version: z.string().nullable(),
  startDate: z.string().nullable().describe('YYYY-MM-DD'),
  dueDate: z.string().nullable(),
  doneRatio: z.number().int(),
  customValues: z.record(z.string(), z.string()).describe('by custom field name'),
  watchers: z.array(Person),
  message: z.string().nullable().describe('the kept message that created it'),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export const WorkPackageDetail = WorkPackageView.extend({ journals: z.array(JournalView), attachments: z.array(AttachmentView) });

export const ProjectRef = z.strictObject({ project: z.string().min(1).max(100).describe('project identifier or id') });
export const StringId = z.strictObject({ id: z.string().min(1).max(64) });
export const WpParams = z.strictObject({ id: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER) });
export const WpListQuery = z.strictObject({
  project: z.string().min(1).max(100).optional().describe('project identifier or id'),
  after: z.coerce.number().int().min(0).optional().describe('the `next` of the previous page'),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});
