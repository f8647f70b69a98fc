import { lookup } from 'node:dns/promises';
import net from 'node:net';

/**
 * A client allowlist as operators write it: IPs, CIDRs (10.0.0.0/8, 2001:db8::/32), ranges
 * (192.168.1.0-192.168.1.31) and host names (resolved, forward only, and cached briefly).
 * Used by the SMTP listener and by routes; one parser, one matcher.
 */
export interface ClientList {
  /** Whether the client address is on the list. */
  matches(ip: string): Promise<boolean>;
  readonly entries: readonly string[];
}

type Rule =
  | { kind: 'net'; list: net.BlockList }
  | { kind: 'host'; name: string };

function family(ip: string): 'ipv4' | 'ipv6' {
  return net.isIPv6(ip) ? 'ipv6' : 'ipv4';
}

/** '::ffff:1.2.3.4' → '1.2.3.4': node reports IPv4 clients of a dual-stack socket that way. */
export function normaliseIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1] : ip;
}

/** Parse one entry; throws with the entry named when it is neither an address, a range, a CIDR nor a host name. */
function parseEntry(entry: string): Rule {
  const e = entry.trim();
  const list = new net.BlockList();
  const range = /^([^-\s]+)\s*-\s*([^-\s]+)$/.exec(e);
  if (range && net.isIP(range[1]) && net.isIP(range[1]) === net.isIP(range[2])) {
    list.addRange(range[1], range[2], family(range[1]));
    return { kind: 'net', list };
  }
  const cidr = /^([^/]+)\/(\d{1,3})$/.exec(e);
  if (cidr && net.isIP(cidr[1])) {
    const bits = Number(cidr[2]);
    if (bits > (net.isIPv6(cidr[1]) ? 128 : 32)) throw new Error(`bad prefix length in '${entry}'`);
    list.addSubnet(cidr[1], bits, family(cidr[1]));
    return { kind: 'net', list };
  }
  if (net.isIP(e)) {
    list.addAddress(e, family(e));
    return { kind: 'net', list };
  }
  if (/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(e)) {
    return { kind: 'host', name: e.toLowerCase() };
  }
  throw new Error(`not an IP, CIDR, range or host name: '${entry}'`);
}

/**
 * Entries as written, one address per item: `localhost, 127.0.0.1` in one entry is two (the
 * fax gateway's config lists clients comma-separated).
 */
export function splitEntries(entries: readonly string[]): string[] {
  return entries.flatMap((e) => e.split(',')).map((e) => e.trim()).filter((e) => e !== '');
}

/** Validate entries without building a list (for the config schema). */
export function checkClientEntries(entries: string[]): string | undefined {
  if (!splitEntries(entries).length) return 'no client named';
  for (const e of splitEntries(entries)) {
    try {
      parseEntry(e);
    } catch (err) {
      return (err as Error).message;
    }
  }
  return undefined;
}

/** Build a matcher from entries; host names are resolved at match time and cached for a minute. */
export function clientList(entries: string[], resolve = lookup): ClientList {
  const rules = splitEntries(entries).map(parseEntry);
  const cache = new Map<string, { at: number; ips: string[] }>();
  async function addressesOf(name: string): Promise<string[]> {
    const hit = cache.get(name);
    if (hit && Date.now() - hit.at < 60_000) return hit.ips;
    let ips: string[] = [];
    try {
      ips = (await resolve(name, { all: true })).map((a) => a.address);
    } catch {
      ips = []; // an unresolvable name allows nobody
    }
    cache.set(name, { at: Date.now(), ips });
    return ips;
  }
  return {
    entries,
    async matches(rawIp: string) {
      const ip = normaliseIp(rawIp);
      if (!net.isIP(ip)) return false;
      for (const r of rules) {
        if (r.kind === 'net' && r.list.check(ip, family(ip))) return true;
        if (r.kind === 'host' && (await addressesOf(r.name)).map(normaliseIp).includes(ip)) return true;
      }
      return false;
    },
  };
}
