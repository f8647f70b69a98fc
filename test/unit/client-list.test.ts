import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkClientEntries, clientList, normaliseIp } from '../../src/net/client-list.js';

/** A resolver that knows a fixed set of names, and counts lookups. */
function fakeResolver(names: Record<string, string[]>) {
  const calls: string[] = [];
  const resolve = (async (name: string) => {
    calls.push(name);
    if (!names[name]) throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
    return names[name].map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  }) as unknown as typeof import('node:dns/promises').lookup;
  return { resolve, calls };
}

describe('client allowlist', () => {
  test('matches single addresses, CIDRs and a.b.c.d-a.b.c.e ranges, IPv4 and IPv6', async () => {
    const list = clientList(['192.0.2.7', '10.0.0.0/8', '192.168.1.0-192.168.1.31', '2001:db8::/32', '::1']);
    for (const ip of ['192.0.2.7', '10.255.1.2', '192.168.1.0', '192.168.1.31', '2001:db8::42', '::1']) {
      assert.equal(await list.matches(ip), true, ip);
    }
    for (const ip of ['192.0.2.8', '11.0.0.1', '192.168.1.32', '2001:db9::1', '127.0.0.1', 'not-an-ip', '']) {
      assert.equal(await list.matches(ip), false, ip);
    }
  });

  test('treats an IPv4-mapped IPv6 client (::ffff:a.b.c.d) as the IPv4 address', async () => {
    assert.equal(normaliseIp('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(await clientList(['10.0.0.0/8']).matches('::ffff:10.1.2.3'), true);
  });

  test('matches host names through a forward lookup, cached; an unresolvable name allows nobody', async () => {
    const dns = fakeResolver({ 'relay.example.org': ['198.51.100.5', '2001:db8::5'] });
    const list = clientList(['relay.example.org', 'gone.example.org'], dns.resolve);
    assert.equal(await list.matches('198.51.100.5'), true);
    assert.equal(await list.matches('2001:db8::5'), true);
    assert.equal(await list.matches('198.51.100.6'), false);
    assert.equal(dns.calls.filter((n) => n === 'relay.example.org').length, 1, 'looked up once, then cached');
  });

  test('names the bad entry when one is neither an address, a CIDR, a range nor a host name', () => {
    assert.equal(checkClientEntries(['10.0.0.0/8', 'example.org']), undefined);
    assert.match(checkClientEntries(['10.0.0.0/33']) ?? '', /10\.0\.0\.0\/33/);
    assert.match(checkClientEntries(['bad_name!']) ?? '', /'bad_name!'/);
    assert.throws(() => clientList(['1.2.3.4-::1']), /1\.2\.3\.4-::1/);
  });
});
