import { createHash } from 'node:crypto';
import { OBJECT_ROUTE_NAMES } from '../domain/objects/config.js';
import type { Config } from './schema.js';

/**
 * What a config reload (SIGHUP, `postroom reload`, POST /api/v1/system/reload) may change in a
 * running server, and what waits for a restart. Reloadable settings apply to sessions that
 * start after the reload; a session in progress finishes on the settings it began with.
 * Anything not listed here (listeners, dataDir, the store, parse and delivery settings…) is
 * reported as needing a restart and left as it runs: never half applied.
 */
export const RELOADABLE: readonly string[] = [
  'routes',
  'smtp.banner',
  'smtp.maxMessageSize',
  'smtp.minFreeSpace',
  'smtp.maxRecipients',
  'smtp.maxClients',
  'smtp.maxClientsPerIp',
  'smtp.socketTimeout',
  'smtp.dataTimeout',
  'smtp.minDataRate',
  'smtp.minDataRateGrace',
  'smtp.greetingDelay',
  'smtp.clients',
  'smtp.auth',
  'smtp.tls',
  'smtp.requireMessageId',
  'smtp.nonstandardDataTerminator',
  'smtp.bareLineEndings',
  'smtp.traceHeader',
  'http.tls',
];

/** The answer of a reload, as the API returns it and the log line says it. */
export interface ReloadResult {
  /** applied: something changed; unchanged: nothing to apply; invalid: the running config is kept. */
  result: 'applied' | 'unchanged' | 'invalid';
  /** The config generation in force after the reload (1 at start, raised by each applied reload). */
  generation: number;
  /** A short hash of the config in force. */
  hash: string;
  /** Key paths now in force for new sessions (`tls` certificates read again count as their key). */
  applied: string[];
  /** Key paths changed in the file that take effect only after a restart. */
  needsRestart: string[];
  /** invalid: each problem with its key path (`routes[0].deliver[0].spool.dir: …`). */
  problems: string[];
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const isPlain = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** Every changed key path, to two levels (`smtp.maxRecipients`, `store.database`, `routes`). */
export function changedPaths(old: Config, next: Config): string[] {
  const out: string[] = [];
  const a = old as unknown as Record<string, unknown>;
  const b = next as unknown as Record<string, unknown>;
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (same(a[key], b[key])) continue;
    const x = a[key];
    const y = b[key];
    if (isPlain(x) && isPlain(y)) {
      for (const sub of new Set([...Object.keys(x), ...Object.keys(y)])) if (!same(x[sub], y[sub])) out.push(`${key}.${sub}`);
    } else {
      out.push(key);
    }
  }
  return out;
}

/** Whether the SMTP listener offers AUTH with this config (decided when it is built). */
export function smtpAuthOn(s: Config['smtp']): boolean {
  // smtp-server refuses cleartext AUTH only when STARTTLS is on offer: without a certificate it
  // would take passwords in the clear. So no TLS and no allowInsecure means no AUTH at all.
  return (s.auth?.users.length ?? 0) > 0 && (!!s.tls || (s.auth?.allowInsecure ?? false));
}
const authOn = smtpAuthOn;

/**
 * Whether a reloadable path's change still needs a restart: what the listener decided when it
 * was built (whether STARTTLS and AUTH are offered at all, whether DATA is rewritten for fax
 * clients, whether the HTTP listener speaks TLS) stays until it is built again.
 */
function fixedAtStart(path: string, old: Config, next: Config): boolean {
  switch (path) {
    case 'smtp.tls':
      return !!old.smtp.tls !== !!next.smtp.tls || authOn(old.smtp) !== authOn(next.smtp);
    case 'smtp.auth':
      return authOn(old.smtp) !== authOn(next.smtp) || (old.smtp.auth?.allowInsecure ?? false) !== (next.smtp.auth?.allowInsecure ?? false);
    case 'smtp.nonstandardDataTerminator':
      return !old.smtp.nonstandardDataTerminator?.length && !!next.smtp.nonstandardDataTerminator?.length;
    case 'http.tls':
      return !!old.http.tls !== !!next.http.tls;
    default:
      return false;
  }
}

/**
 * Split the changes between two configs, and the config to run on: the old one with the
 * reloadable changes of the new. The routes of `objects:` follow that section, which needs a
 * restart: they stay as they run until then.
 */
export function planReload(old: Config, next: Config): { applied: string[]; needsRestart: string[]; effective: Config } {
  const applied: string[] = [];
  const needsRestart: string[] = [];
  const effective = structuredClone(old);
  const objectsChanged = !same(old.objects, next.objects);
  for (const path of changedPaths(old, next)) {
    if (!RELOADABLE.includes(path) || fixedAtStart(path, old, next)) {
      needsRestart.push(path);
      continue;
    }
    const [top, sub] = path.split('.') as [keyof Config, string | undefined];
    if (top === 'routes') {
      const isObjects = (n: string) => (OBJECT_ROUTE_NAMES as readonly string[]).includes(n);
      effective.routes = objectsChanged
        ? [...next.routes.filter((r) => !isObjects(r.name)), ...old.routes.filter((r) => isObjects(r.name))]
        : next.routes;
      if (same(effective.routes, old.routes)) continue;
    } else {
      (effective[top] as Record<string, unknown>)[sub!] = structuredClone((next[top] as Record<string, unknown>)[sub!]);
    }
    applied.push(path);
  }
  return { applied, needsRestart, effective };
}

/** A short, stable fingerprint of a config (for the metric and the log). */
export function configHash(config: Config): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 12);
}
