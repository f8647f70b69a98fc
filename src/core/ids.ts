import { randomBytes } from 'node:crypto';

// Crockford base32: ids sort by creation time as plain strings, which cursor pagination needs.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
let lastMs = 0;
let lastRand: Buffer = Buffer.alloc(0);

function encodeTime(ms: number): string {
  let out = '';
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[ms % 32] + out;
    ms = Math.floor(ms / 32);
  }
  return out;
}

function increment(buf: Buffer): Buffer {
  const next = Buffer.from(buf);
  for (let i = next.length - 1; i >= 0; i--) {
    if (next[i] === 255) next[i] = 0;
    else {
      next[i]++;
      break;
    }
  }
  return next;
}

/** A new id: a 26-character ULID-like string, monotonic within this process. */
export function newId(prefix = ''): string {
  const now = Date.now();
  lastRand = now === lastMs ? increment(lastRand) : randomBytes(10);
  lastMs = now;
  let rand = '';
  for (let i = 0; i < 10; i += 5) {
    // 5 bytes = 40 bits = 8 base32 digits, most significant first so the string sorts. 40 bits
    // fit a double exactly, so plain numbers do (BigInt cost more than the rest of the id).
    let v = 0;
    for (let j = 0; j < 5; j++) v = v * 256 + lastRand[i + j];
    let chunk = '';
    for (let k = 0; k < 8; k++) {
      chunk = ALPHABET[v % 32] + chunk;
      v = Math.floor(v / 32);
    }
    rand += chunk;
  }
  return prefix + encodeTime(now) + rand;
}

/** The smallest id made at `ms` or later (a bound for range queries on ids: `id >= idFloor(t)`). */
export function idFloor(ms: number): string {
  return encodeTime(Math.max(0, Math.floor(ms)));
}
