import { Resolver } from 'node:dns/promises';

/**
 * A DNS lookup as mailauth calls it (`dns.promises.resolve(name, rrtype)`): answers, or an error
 * whose `code` is ENOTFOUND/ENODATA (no such name/record: a definite answer) or anything else
 * (ETIMEOUT, ESERVFAIL, ...: temporary, RFC 7208 §2.6.6 temperror).
 */
export type DnsLookup = (name: string, rrtype: string) => Promise<unknown>;

export interface DnsCacheOptions {
  /** Longest an answer (or a definite "no such record") is reused, ms. */
  ttl: number;
  /** Most answers kept; the oldest is dropped first. */
  maxEntries: number;
}

/** A DNS error as node:dns makes them, so mailauth's `err.code` checks read it. */
export function dnsError(code: string, name: string): Error & { code: string } {
  return Object.assign(new Error(`${code} ${name}`), { code });
}

/** Definite answers (RFC 2308 negative answers too); anything else is not cached and asked again. */
const DEFINITE = new Set(['ENOTFOUND', 'ENODATA']);

/**
 * A TTL- and size-bounded cache in front of a lookup. Every message from one sender asks the
 * same SPF, DMARC and DKIM key records: without a cache each one costs round trips. node's
 * resolver does not tell the record's own TTL through `resolve()`, so the cache keeps an answer
 * for at most `ttl` (a short bound, 5 min by default: a changed key or policy is seen soon).
 * Concurrent lookups of one name share one query.
 */
export function cachedLookup(lookup: DnsLookup, opts: DnsCacheOptions): DnsLookup & { size(): number } {
  const cache = new Map<string, { at: number; value?: unknown; error?: Error }>();
  const inFlight = new Map<string, Promise<unknown>>();
  const fn = async (name: string, rrtype: string): Promise<unknown> => {
    const key = `${rrtype} ${name.toLowerCase()}`;
    const hit = cache.get(key);
    if (hit && Date.now() - hit.at < opts.ttl) {
      if (hit.error) throw hit.error;
      return hit.value;
    }
    if (hit) cache.delete(key);
    const running = inFlight.get(key);
    if (running) return running;
    const p = lookup(name, rrtype).then(
      (value) => {
        remember(key, { at: Date.now(), value });
        return value;
      },
      (error: Error & { code?: string }) => {
        if (error.code && DEFINITE.has(error.code)) remember(key, { at: Date.now(), error });
        throw error;
      },
    );
    inFlight.set(key, p);
    try {
      return await p;
    } finally {
      inFlight.delete(key);
    }
  };
  function remember(key: string, entry: { at: number; value?: unknown; error?: Error }): void {
    cache.set(key, entry);
    while (cache.size > opts.maxEntries) cache.delete(cache.keys().next().value as string);
  }
  return Object.assign(fn, { size: () => cache.size });
}

/**
 * A lookup that gives up at `deadline` (ms since the epoch) with ETIMEOUT: the caller's answer
 * (the 250 after DATA) must not wait on a slow or dead name server.
 */
export function boundedLookup(lookup: DnsLookup, deadline: number): DnsLookup {
  return (name, rrtype) => {
    const left = deadline - Date.now();
    if (left <= 0) return Promise.reject(dnsError('ETIMEOUT', name));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(dnsError('ETIMEOUT', name)), left);
      lookup(name, rrtype).then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e as Error);
        },
      );
    });
  };
}

/** The system's resolver (or the given servers), one try per query: retries are the caller's time bound's business. */
export function systemLookup(servers?: string[], timeout = 2_000): DnsLookup {
  const r = new Resolver({ timeout, tries: 1 });
  if (servers?.length) r.setServers(servers);
  return (name, rrtype) => r.resolve(name, rrtype);
}
