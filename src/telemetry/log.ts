import pino, { type Level, type Logger } from 'pino';
import { DailyLogFile } from './daily-file.js';

export type { Logger };

/** The process logger: pino JSON on stdout (or stderr for CLI commands whose stdout is data). */
export function createLogger(
  level: string,
  opts: { stderr?: boolean; name?: string; file?: { dir: string; level: string; keepDays: number } } = {},
): Logger {
  const console = opts.stderr ? pino.destination(2) : pino.destination(1);
  const options = { name: opts.name ?? 'postroom', base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (!opts.file) return pino({ ...options, level }, console);
  // Each destination with its own level; the logger passes what the more verbose one takes.
  const streams = [
    { level: level as Level, stream: console },
    { level: opts.file.level as Level, stream: new DailyLogFile(opts.file.dir, opts.file.keepDays) },
  ].filter((s) => (s.level as string) !== 'silent');
  const values = pino.levels.values;
  const min = streams.reduce((m, s) => (values[s.level] < values[m] ? s.level : m), 'fatal' as Level);
  return pino({ ...options, level: streams.length ? min : 'silent' }, pino.multistream(streams));
}
