import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** The package version (package.json sits two levels above src/api and dist/api). */
export function packageVersion(): string {
  if (cached) return cached;
  try {
    cached = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    cached = '0.0.0';
  }
  return cached;
}
