import pino, { type Logger } from 'pino';

export type { Logger };

/** The process logger: pino JSON on stdout (or stderr for CLI commands whose stdout is data). */
export function createLogger(level: string, opts: { stderr?: boolean; name?: string } = {}): Logger {
  return pino(
    { level, name: opts.name ?? 'postroom', base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    opts.stderr ? pino.destination(2) : pino.destination(1),
  );
}
