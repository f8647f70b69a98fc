import dns from 'node:dns';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { dnsError, type DnsLookup } from '../../src/net/dns-cache.js';

/**
 * A fixed DNS zone for sender authentication tests: `"TXT example.org": ["v=spf1 ..."]`.
 * Anything not in it is ENOTFOUND (a definite "no such record"), as a real zone would answer.
 * TXT answers are split into 255-byte strings as a name server sends them (RFC 7208 §3.3).
 */
export function zoneLookup(zone: Record<string, string[]>): DnsLookup & { asked: string[] } {
  const asked: string[] = [];
  const fn = async (name: string, rrtype: string) => {
    const key = `${rrtype} ${name.toLowerCase().replace(/\.$/, '')}`;
    asked.push(key);
    const v = zone[key];
    if (!v) throw dnsError('ENOTFOUND', name);
    return rrtype === 'TXT' ? v.map((s) => s.match(/.{1,255}/g) ?? ['']) : v;
  };
  return Object.assign(fn, { asked });
}

/**
 * No DNS query leaves this process: every resolver of node:dns (callback and promise, module
 * functions and Resolver instances) is replaced by one that records the name and fails, and the
 * servers point at a port nothing listens on. `escaped()` lists what was tried; `restore()` undoes it.
 */
export function denyRealDns(): { escaped(): string[]; restore(): void } {
  const tried: string[] = [];
  const servers = dns.getServers();
  dns.setServers(['127.0.0.1:1']);
  const undo: (() => void)[] = [];
  const names = ['resolve', 'resolve4', 'resolve6', 'resolveTxt', 'resolveMx', 'resolveCname', 'resolveNs', 'resolvePtr', 'reverse', 'resolveAny'] as const;
  const patch = (obj: Record<string, unknown>, name: string, promise: boolean) => {
    const orig = obj[name];
    if (typeof orig !== 'function') return;
    obj[name] = (...args: unknown[]) => {
      tried.push(`${name} ${String(args[0])}`);
      const err = dnsError('EREFUSED', String(args[0]));
      if (promise) return Promise.reject(err);
      const cb = args[args.length - 1];
      if (typeof cb === 'function') process.nextTick(() => (cb as (e: Error) => void)(err));
      return undefined;
    };
    undo.push(() => (obj[name] = orig));
  };
  for (const n of names) {
    patch(dns as unknown as Record<string, unknown>, n, false);
    patch(dns.promises as unknown as Record<string, unknown>, n, true);
    patch(dns.Resolver.prototype as unknown as Record<string, unknown>, n, false);
    patch(dns.promises.Resolver.prototype as unknown as Record<string, unknown>, n, true);
  }
  return {
    escaped: () => [...tried],
    restore() {
      undo.reverse().forEach((u) => u());
      dns.setServers(servers);
    },
  };
}

/** An RSA key pair and its DKIM key record (`v=DKIM1; k=rsa; p=...`). */
export function dkimKey(bits = 2048): { privateKey: KeyObject; pem: string; record: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return {
    privateKey,
    pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    record: `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`,
  };
}
