import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import { POSTROOM_NS, parseClark } from '../objects/properties.js';

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

/** The settings a folder keeps, by name (each also a property {urn:postroom:property}NAME). */
export const FOLDER_SETTING_NAMES = ['collectMIMEType', 'keepUnmatched'] as const;

/**
 * Settings as an API or CLI caller gave them, with keys in the seed's spelling read as ours
 * (`{}collectMIMEType`, OpenGroupware Coils' empty namespace, or `{urn:postroom:property}keepUnmatched`
 * → the bare key), then checked. Other keys are kept as given. INVALID_REQUEST on a bad value.
 */
export function folderSettingsFrom(given: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(given)) {
    let key = k;
    if (k.startsWith('{')) {
      const p = parseClark(k);
      if (p.namespace === POSTROOM_NS) key = p.name;
    }
    out[key] = v;
  }
  const r = folderSettings.passthrough().safeParse(out);
  if (!r.success) throw mailError('INVALID_REQUEST', r.error.issues.map((i) => `properties.${i.path.join('.')}: ${i.message}`).join('; '));
  return r.data;
}

/** A setting's value from a property's text: a list of types is comma-separated; booleans are true/false. */
export function settingFromProperty(name: (typeof FOLDER_SETTING_NAMES)[number], value: string): unknown {
  if (name === 'keepUnmatched') {
    if (!/^(true|false)$/i.test(value.trim())) throw mailError('INVALID_REQUEST', `keepUnmatched: true or false, not '${value}'`);
    return value.trim().toLowerCase() === 'true';
  }
  const types = value.split(',').map((t) => t.trim()).filter(Boolean);
  return types.length === 1 ? types[0] : types;
}
