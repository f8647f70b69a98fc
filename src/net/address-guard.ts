import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import net from 'node:net';
import { mailError, type MailError } from '../core/errors.js';

/**
 * SSRF guard for outbound connections made on behalf of configured routes. A webhook URL
 * naming a host that resolves to loopback, link-local (169.254.169.254: cloud metadata) or a
 * private network would let whoever writes routes (or whoever controls that DNS name) reach
 * services that trust the local network. The check runs on the address actually connected to,
 * inside the socket's own lookup, so a name that resolves public once and private the next
 * time (DNS rebinding) cannot slip through between a check and the connect.
 */

const blocked = new net.BlockList();
for (const [addr, bits] of [
  ['0.0.0.0', 8], // "this network"; 0.0.0.0 reaches the local host on Linux
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // RFC 6598 carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata endpoints
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  blocked.addSubnet(addr, bits, 'ipv4');
}
for (const [addr, bits] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // old site-local
  ['ff00::', 8], // multicast
] as const) {
  blocked.addSubnet(addr, bits, 'ipv6');
}

/** The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::/96) IPv6 address. */
function embeddedIpv4(ip: string): string | undefined {
  const m = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (m) return m[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip);
  if (!hex) return undefined;
  const hi = parseInt(hex[1], 16);
  const lo = parseInt(hex[2], 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** Whether an IP address is loopback, link-local, private, multicast or otherwise not the public internet. */
export function isPrivateAddress(ip: string): boolean {
  const family = net.isIP(ip);
  if (family === 4) return blocked.check(ip, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIpv4(ip);
    if (v4) return blocked.check(v4, 'ipv4');
    return blocked.check(ip, 'ipv6');
  }
  return true; // not an address at all: refuse
}

/** The permanent error for a refused address. */
export function privateAddressError(host: string, ip: string): MailError {
  const shown = host === ip ? ip : `${host} (${ip})`;
  return mailError('TARGET_PRIVATE', `Refusing to connect to ${shown}: loopback, link-local or private address; set allowPrivate: true on the route to allow it`);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net/http/tls connect options that resolves the name and refuses private
 * addresses (unless `allowPrivate`). Node calls it at connect time and connects to exactly the
 * address it returns. Literal IP hosts skip lookup in Node: check them with isPrivateAddress too.
 */
export function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: { all?: boolean; family?: number | string } | number, callback: LookupCallback): void => {
    const opts = typeof options === 'number' ? { family: options } : options;
    dnsLookup(hostname, { all: true, family: opts.family as 0 | 4 | 6 | undefined }, (err, addresses) => {
      if (err) return callback(err, '');
      const ok = allowPrivate ? addresses : addresses.filter((a) => !isPrivateAddress(a.address));
      if (!ok.length) {
        const first = addresses[0]?.address ?? '?';
        return callback(privateAddressError(hostname, first) as unknown as NodeJS.ErrnoException, '');
      }
      if (opts.all) return callback(null, ok);
      callback(null, ok[0].address, ok[0].family);
    });
  };
}
