import { z } from 'zod';
import { mailError } from '../../core/errors.js';

/**
 * The operator's extensions of the mail model, as the email processor service allowed: their
 * own properties on profiles, accounts, folders and messages, typed, and a string property
 * optionally limited to a list of values (an enumeration of their own). Anything not declared
 * in `mail.model` is refused, so a typo cannot pass for data.
 */

const propertyName = z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'a letter, then letters, digits or _ (at most 64)');

const propertySpec = z.strictObject({
  type: z.enum(['string', 'number', 'boolean']).default('string').describe('what a value must be'),
  values: z.array(z.string().min(1).max(200)).min(1).optional().describe('string properties: the values allowed (an enumeration)'),
  description: z.string().max(500).optional(),
});

const entity = (what: string) =>
  z
    .strictObject({
      properties: z.record(propertyName, propertySpec).default({}).describe(`properties of your own on ${what}, by name`),
    })
    .default({ properties: {} })
    .describe(`what you add to ${what}`);

export const mailModelSchema = z
  .strictObject({
    profiles: entity('profiles'),
    accounts: entity('accounts'),
    folders: entity('folders'),
    messages: entity('messages'),
  })
  .default({ profiles: { properties: {} }, accounts: { properties: {} }, folders: { properties: {} }, messages: { properties: {} } })
  .describe('extensions of the mail model (the email processor service\'s "extending the model")');

export type MailModel = z.output<typeof mailModelSchema>;
export type ModelEntity = 'profiles' | 'accounts' | 'folders' | 'messages';

/** What a request may carry as properties: scalar JSON values (null removes one). */
export const PropertiesInput = z
  .record(z.string(), z.union([z.string().max(10_000), z.number(), z.boolean(), z.null()]))
  .describe('properties of your own, declared in mail.model (null removes one)');
export type Properties = Record<string, string | number | boolean>;

/** `given` merged onto `current`, each checked against the declared properties; throws 400 naming what is wrong. */
export function mergeProperties(model: MailModel, entityName: ModelEntity, current: Properties, given: z.output<typeof PropertiesInput> | undefined): Properties {
  if (!given) return current;
  const declared = model[entityName].properties;
  const out: Properties = { ...current };
  for (const [name, value] of Object.entries(given)) {
    const spec = declared[name];
    if (!spec) {
      const known = Object.keys(declared);
      throw mailError('INVALID_REQUEST', `body.properties.${name}: not a property of ${entityName} (${known.length ? `declared: ${known.join(', ')}` : 'declare it in mail.model.' + entityName + '.properties'})`);
    }
    if (value === null) {
      delete out[name];
      continue;
    }
    if (typeof value !== spec.type) throw mailError('INVALID_REQUEST', `body.properties.${name}: must be a ${spec.type}`);
    if (spec.values && !spec.values.includes(String(value))) throw mailError('INVALID_REQUEST', `body.properties.${name}: one of ${spec.values.join(', ')}`);
    out[name] = value;
  }
  return out;
}

/** A stored properties column (JSON or null) as an object. */
export function readProperties(json: string | null | undefined): Properties {
  if (!json) return {};
  try {
    const v = JSON.parse(json) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Properties) : {};
  } catch {
    return {};
  }
}
