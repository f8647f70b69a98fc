/** What a long command reports: how many of how many, and a line of its own. */
export interface Progress {
  done: number;
  total: number;
}

/**
 * A bar on a terminal, a line every 10 seconds elsewhere (a log file, CI), on `out` (stderr:
 * stdout stays for what a script reads). `label` starts each line; `text` says the rest.
 */
export function progressPrinter<P extends Progress>(
  out: NodeJS.WriteStream,
  label: string,
  text: (p: P, perSecond: number) => string,
): { update(p: P): void; end(p: P): void } {
  const started = Date.now();
  let lastLine = 0;
  const rate = (done: number) => Math.round(done / Math.max(0.001, (Date.now() - started) / 1000));
  return {
    update(p) {
      if (out.isTTY) {
        const width = 30;
        const full = p.total ? Math.min(width, Math.round((width * p.done) / p.total)) : width;
        out.write(`\r[${'#'.repeat(full)}${' '.repeat(width - full)}] ${text(p, rate(p.done))}\x1b[K`);
      } else if (Date.now() - lastLine >= 10_000) {
        lastLine = Date.now();
        out.write(`${label}: ${text(p, rate(p.done))}\n`);
      }
    },
    end(p) {
      out.write(`${out.isTTY ? '\r\x1b[K' : ''}${label}: ${text(p, rate(p.done))}, done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    },
  };
}
