import type { IntakeDeps } from './accept.js';
import { createAuthenticator } from './authenticate.js';
import { cachedLookup, systemLookup, type DnsLookup } from '../net/dns-cache.js';

/** What intake reads of `auth:` (config/schema.ts authSchema). */
export interface AuthSettings {
  enabled: boolean;
  dnsTimeout: number;
  dnsServers?: string[];
  cacheTtl: number;
  cacheSize: number;
  minKeyBits: number;
  trustedHosts: string[];
}

/**
 * Intake's `auth` from the config: the verifier (when enabled) behind one cached DNS lookup per
 * process, and the trusted upstreams. `lookup`: the DNS to ask instead of the system's (tests
 * pass a fixed zone). Undefined when neither is configured.
 */
export function intakeAuth(cfg: AuthSettings, hostname: string, lookup?: DnsLookup): IntakeDeps['auth'] {
  if (!cfg.enabled && !cfg.trustedHosts.length) return undefined;
  const dns = cachedLookup(lookup ?? systemLookup(cfg.dnsServers, cfg.dnsTimeout), { ttl: cfg.cacheTtl, maxEntries: cfg.cacheSize });
  return {
    verify: cfg.enabled ? createAuthenticator({ hostname, timeout: cfg.dnsTimeout, lookup: dns, minBitLength: cfg.minKeyBits }) : undefined,
    trustedHosts: cfg.trustedHosts,
  };
}
