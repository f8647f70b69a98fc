import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import { MESSAGE_STATUSES } from '../../core/message.js';

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

/**
 * Postroom's own enumerated fields that take values of the operator's, with their built-in
 * values. Only fields where a value without a meaning of Postroom's harms nothing: a profile's
 * `protocol` (a profile of another protocol is kept and shown, and nothing is fetched through
 * it) and a message's `status` (set by PATCH; routing, sending and retries act only on the
 * built-in ones). TLS modes are not among them: a mode Postroom does not know would have to
 * connect somehow, and any guess is a security decision made for the operator.
 */
export const ENUMERATED: Record<ModelEntity, Record<string, readonly string[]>> = {
  profiles: { protocol: ['imap', 'pop3'] },
  accounts: {},
  folders: {},
  messages: { status: MESSAGE_STATUSES },
};

/** Longest value each field's column holds (store/migrations: protocol varchar(8), status varchar(16)). */
const MAX_LENGTH: Record<string, number> = { protocol: 8, status: 16 };

const entity = (what: ModelEntity) =>
  z
    .strictObject({
      properties: z.record(propertyName, propertySpec).default({}).describe(`properties of your own on ${what}, by name`),
      values: z
        .record(z.string(), z.array(z.string().regex(/^[a-z][a-z0-9_-]*$/, 'lower case letters, digits, - or _, a letter first')).min(1))
        .default({})
        .superRefine((v, ctx) => {
          for (const [field, extra] of Object.entries(v)) {
            const builtIn = ENUMERATED[what][field];
            if (!builtIn) {
              const known = Object.keys(ENUMERATED[what]);
              ctx.addIssue({ code: 'custom', path: [field], message: `not an enumerated field of ${what} (${known.length ? `those are: ${known.join(', ')}` : 'it has none'})` });
              continue;
            }
            for (const x of extra) {
              if (builtIn.includes(x)) ctx.addIssue({ code: 'custom', path: [field], message: `${x} is a built-in value of ${field}` });
              if (x.length > MAX_LENGTH[field]) ctx.addIssue({ code: 'custom', path: [field], message: `${x}: at most ${MAX_LENGTH[field]} characters` });
            }
          }
        })
        .describe(
          `extra values for Postroom's own enumerated fields of ${what}${Object.keys(ENUMERATED[what]).length ? ` (${Object.keys(ENUMERATED[what]).join(', ')})` : ' (it has none)'}, by field: accepted and shown beside the built-in ones, with no behaviour of Postroom's`,
        ),
    })
    .default({ properties: {}, values: {} })
    .describe(`what you add to ${what}`);

export const mailModelSchema = z
  .strictObject({
    profiles: entity('profiles'),
    accounts: entity('accounts'),
    folders: entity('folders'),
    messages: entity('messages'),
  })
  .default({
    profiles: { properties: {}, values: {} },
    accounts: { properties: {}, values: {} },
    folders: { properties: {}, values: {} },
    messages: { properties: {}, values: {} },
  })
  .describe('extensions of the mail model (the email processor service\'s "extending the model")');

export type MailModel = z.output<typeof mailModelSchema>;
export type ModelEntity = 'profiles' | 'accounts' | 'folders' | 'messages';

/** The values a field takes: the built-in ones, then the operator's (`mail.model.<entity>.values`). */
export function enumValues(model: MailModel | undefined, entityName: ModelEntity, field: string): [string, ...string[]] {
  const builtIn = ENUMERATED[entityName][field];
  return [...builtIn, ...(model?.[entityName].values[field] ?? [])] as [string, ...string[]];
}

/** Whether a value is one of the operator's (no behaviour of Postroom's attached). */
export function isExtraValue(model: MailModel | undefined, entityName: ModelEntity, field: string, value: string): boolean {
  return !ENUMERATED[entityName][field].includes(value) && !!model?.[entityName].values[field]?.includes(value);
}

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
