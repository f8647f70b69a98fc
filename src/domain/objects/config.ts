import { z } from 'zod';
import { retrySchema } from '../../config/retry.js';
import type { Route } from '../../routing/schema.js';
import { DEFAULT_HEADER_PROPERTIES } from '../folders/collect.js';

/**
 * `objects:` in the config. With a prefix and a domain, two routes are added after the
 * configured ones: `objects` takes PREFIX+<id>@DOMAIN into folder <id>, `workflows` takes
 * PREFIX+wf+<name>@DOMAIN and starts workflow <name>. They are ordinary routes (priority,
 * retry, RCPT-time checks), built here so the addresses have one definition.
 */
export const objectsSchema = z.strictObject({
  prefix: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,32}$/, 'letters, digits, . _ - (no + or @)')
    .optional()
    .describe('local-part prefix of object addresses: PREFIX+<id>@DOMAIN, PREFIX+wf+<name>@DOMAIN'),
  domain: z
    .string()
    .regex(/^[A-Za-z0-9.-]+$/, 'a domain name')
    .optional()
    .describe('domain of object addresses; with prefix, turns on the objects and workflows routes'),
  priority: z.number().int().default(50).describe('priority of the two object routes (lower runs first)'),
  headers: z
    .array(z.string().regex(/^[!-9;-~]+$/, 'a header field name').transform((s) => s.toLowerCase()))
    .default([...DEFAULT_HEADER_PROPERTIES])
    .describe('header fields recorded as {urn:postroom:mail-header} properties of filed documents'),
  retry: retrySchema.optional().describe('retry policy of the two object routes (workflow runs that fail transiently)'),
});

export type ObjectsConfig = z.output<typeof objectsSchema>;

/** Names of the routes `objects:` adds. */
export const OBJECT_ROUTE_NAMES = ['objects', 'workflows'] as const;

/** The address of an object or a workflow, or undefined when objects are not addressable. */
export function objectAddress(cfg: ObjectsConfig, target: { id: number } | { workflow: string }): string | undefined {
  if (!cfg.prefix || !cfg.domain) return undefined;
  return 'workflow' in target ? `${cfg.prefix}+wf+${target.workflow}@${cfg.domain}` : `${cfg.prefix}+${target.id}@${cfg.domain}`;
}

/**
 * The routes `objects:` adds (none without both prefix and domain), each checked by
 * `routeSchema` (the config's, built from the target registry) like a configured route.
 */
export function objectRoutes(cfg: ObjectsConfig, routeSchema: { parse(input: unknown): Route }): Route[] {
  if (!cfg.prefix || !cfg.domain) return [];
  const common = { priority: cfg.priority, ...(cfg.retry ? { retry: cfg.retry } : {}) };
  return [
    routeSchema.parse({
      name: 'objects',
      ...common,
      match: { recipient: `${cfg.prefix}+{objectId}@${cfg.domain}` },
      deliver: [{ folder: {} }],
    }),
    routeSchema.parse({
      name: 'workflows',
      ...common,
      match: { recipient: `${cfg.prefix}+wf+{route}@${cfg.domain}` },
      deliver: [{ workflow: {} }],
    }),
  ];
}
