import { z } from 'zod';

/**
 * A folder's own settings, kept in its object properties. `collectMIMEType` decides what a
 * message leaves in the folder (the OpenGroupware Coils rule):
 * - unset or `message/rfc822`: the whole raw message, as one document;
 * - `text/plain`: the text body, as one document;
 * - any other type, a wildcard (`image/*`) or a list: only the attachments of those types;
 *   the message itself is not filed. None matching: the delivery fails 5.6.0, unless
 *   `keepUnmatched` files the raw message instead.
 */

const mimeType = z
  .string()
  .regex(/^(\*|[a-z0-9!#$&^_.+-]+)\/(\*|[a-z0-9!#$&^_.+-]+)$/i, 'a MIME type like application/pdf or image/*')
  .transform((s) => s.toLowerCase());

export const folderSettings = z
  .object({
    collectMIMEType: z
      .union([mimeType, z.array(mimeType).min(1)])
      .optional()
      .describe('message/rfc822 (default): the raw message; text/plain: the body; other types or a list: those attachments'),
    keepUnmatched: z
      .boolean()
      .optional()
      .describe('no attachment of the collected types: file the raw message instead of failing with 5.6.0'),
  })
  .describe('folder settings; other keys are kept as given');

export type FolderSettings = z.output<typeof folderSettings>;

/** What a folder takes from each message. */
export type CollectMode = { mode: 'raw' } | { mode: 'text' } | { mode: 'attachments'; types: string[] };

/** The collect mode of a folder's settings. */
export function collectMode(s: FolderSettings): CollectMode {
  const types = s.collectMIMEType === undefined ? [] : [s.collectMIMEType].flat();
  if (!types.length || (types.length === 1 && types[0] === 'message/rfc822')) return { mode: 'raw' };
  if (types.length === 1 && types[0] === 'text/plain') return { mode: 'text' };
  return { mode: 'attachments', types };
}

/** A folder's settings from its stored properties (unknown keys ignored, bad values as unset). */
export function readFolderSettings(properties: Record<string, unknown>): FolderSettings {
  const r = folderSettings.safeParse(properties);
  return r.success ? r.data : {};
}
