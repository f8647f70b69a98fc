import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const scryptAsync = (pw: string, salt: Buffer, len: number, opts: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scrypt(pw, salt, len, opts, (e, k) => (e ? reject(e) : resolve(k))));

const DEFAULT = { N: 16384, r: 8, p: 1 };

/** scrypt needs 128·N·r bytes; node's default cap (32 MiB) refuses N=2^15 with r=8, so allow twice that plus slack. */
const maxmem = (N: number, r: number) => 256 * N * r + 1024 * 1024;

/**
 * A scrypt hash in the form `scrypt$N$r$p$salt$hash` (base64), for smtp.auth.users[].password
 * and console users. Computed on libuv's thread pool (crypto.scrypt), never on the event loop.
 */
export async function hashPassword(password: string, cost: { N: number; r: number; p: number } = DEFAULT): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, 32, { ...cost, maxmem: maxmem(cost.N, cost.r) });
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Check a password against a stored scrypt hash, in constant time. A malformed hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(stored);
  if (!m) return false;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const expected = Buffer.from(m[5], 'base64');
  if (expected.length < 16) return false;
  const key = await scryptAsync(password, Buffer.from(m[4], 'base64'), expected.length, {
    N,
    r,
    p,
    maxmem: maxmem(N, r),
  });
  return timingSafeEqual(key, expected);
}

/** Compare two secrets (API tokens) in constant time, whatever their lengths. */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  // Compare equal-length buffers always, so the time does not reveal the expected length.
  const len = Math.max(ab.length, bb.length, 1);
  const pa = Buffer.alloc(len);
  const pb = Buffer.alloc(len);
  ab.copy(pa);
  bb.copy(pb);
  return timingSafeEqual(pa, pb) && ab.length === bb.length;
}
