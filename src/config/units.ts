import { z } from 'zod';

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1000, kb: 1000, m: 1000 ** 2, mb: 1000 ** 2, g: 1000 ** 3, gb: 1000 ** 3,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3,
};

/** Parse '200MiB', '10 MB', '4096' into bytes; throws on anything else. */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') return input;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(input);
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`not a size: '${input}' (use e.g. 4096, 512KiB, 200MiB, 1GB)`);
  return Math.round(Number(m[1]) * unit);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parse '30s', '250ms', '1h30m', '2d' (or a number of milliseconds) into milliseconds. */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') return input;
  const s = input.trim();
  if (/^\d+$/.test(s)) return Number(s);
  let total = 0;
  let rest = s;
  const re = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)/;
  if (!re.test(rest)) throw new Error(`not a duration: '${input}' (use e.g. 250ms, 30s, 5m, 1h30m, 2d)`);
  while (rest.length) {
    const m = re.exec(rest);
    if (!m) throw new Error(`not a duration: '${input}' (use e.g. 250ms, 30s, 5m, 1h30m, 2d)`);
    total += Number(m[1]) * DURATION_UNITS[m[2]];
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}

/** zod type for a size: accepts '200MiB' or a byte count, yields bytes. */
export const size = () =>
  z.union([z.string(), z.number().int().nonnegative()]).transform((v, ctx) => {
    try {
      return parseSize(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });

/** zod type for a duration: accepts '30s' or milliseconds, yields milliseconds. */
export const duration = () =>
  z.union([z.string(), z.number().int().nonnegative()]).transform((v, ctx) => {
    try {
      return parseDuration(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });

/** zod type for 'host:port' (IPv6 as '[::1]:25'), yields { host, port }. */
export const listen = () =>
  z.string().transform((v, ctx) => {
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(v.trim());
    const port = m ? Number(m[3]) : NaN;
    if (!m || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `not host:port: '${v}' (e.g. 127.0.0.1:2525, [::1]:25, 0.0.0.0:25)` });
      return z.NEVER;
    }
    return { host: m[1] ?? m[2], port };
  });
