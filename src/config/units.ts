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

/** '200MiB' for 200 × 1024², '1500' for 1500: the shortest way parseSize reads back as `bytes`. */
export function formatSize(bytes: number): string {
  for (const [unit, n] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n}${unit}`;
  }
  return String(bytes);
}

/** '1h30m' for 5 400 000, '250ms' for 250, '0' for 0: what parseDuration reads back as `ms`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  let rest = ms;
  let out = '';
  for (const [unit, n] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    if (rest >= n) {
      out += `${Math.floor(rest / n)}${unit}`;
      rest %= n;
    }
  }
  return out;
}

/** '127.0.0.1:2525', '[::1]:25': a listen address as the config writes it. */
export function formatListen(addr: { host: string; port: number }): string {
  return `${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}`;
}

// The syntax of each unit for the config's JSON Schema (docs/postroom.schema.json), so an
// editor flags '30 sec' as you type. Only metadata: validation and its messages stay in the
// transforms below. `title` names the unit in the config reference (docs/config.md).
const SIZE_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*([kKmMgG]([iI]?[bB])?|[bB])?\\s*$';
const DURATION_PATTERN = '^\\s*(\\d+|(\\d+(\\.\\d+)?(ms|s|m|h|d))+)\\s*$';
const LISTEN_PATTERN = '^\\s*(\\[[^\\]]+\\]|[^:]+):\\d{1,5}\\s*$';

/** The unit a config value is written in; the config reference names it and writes defaults in it. */
export type Unit = 'size' | 'duration' | 'host:port';

/** zod type for a size: accepts '200MiB' or a byte count, yields bytes. */
export const size = () =>
  z
    .union([z.string().meta({ pattern: SIZE_PATTERN }), z.number().int().nonnegative()])
    .meta({ title: 'size' satisfies Unit })
    .transform((v, ctx) => {
    try {
      return parseSize(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });

/** zod type for a duration: accepts '30s' or milliseconds, yields milliseconds. */
export const duration = () =>
  z
    .union([z.string().meta({ pattern: DURATION_PATTERN }), z.number().int().nonnegative()])
    .meta({ title: 'duration' satisfies Unit })
    .transform((v, ctx) => {
    try {
      return parseDuration(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });

/** zod type for 'host:port' (IPv6 as '[::1]:25'), yields { host, port }. */
export const listen = () =>
  z
    .string()
    .meta({ title: 'host:port' satisfies Unit, pattern: LISTEN_PATTERN })
    .transform((v, ctx) => {
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(v.trim());
    const port = m ? Number(m[3]) : NaN;
    if (!m || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `not host:port: '${v}' (e.g. 127.0.0.1:2525, [::1]:25, 0.0.0.0:25)` });
      return z.NEVER;
    }
    return { host: m[1] ?? m[2], port };
  });
