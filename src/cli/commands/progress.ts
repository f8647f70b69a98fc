/** MiB with one decimal. */
const mib = (b: number) => (b / (1024 * 1024)).toFixed(1);

function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = String(t % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/**
 * Progress of a long command over messages and bytes: on a terminal a bar redrawn at most ten
 * times a second (messages, MiB, rate, ETA when the total is known); elsewhere (a log file,
 * cron's mail, CI) a plain line every `every` ms, so the output stays readable.
 */
export function progressLine(out: NodeJS.WriteStream, label: string, totalBytes: number | undefined, every = 10_000) {
  const started = Date.now();
  let last = 0;
  const text = (messages: number, bytes: number) => {
    const secs = Math.max(0.001, (Date.now() - started) / 1000);
    const rate = bytes / secs;
    const parts = [`${messages.toLocaleString('en')} messages`, totalBytes ? `${mib(bytes)}/${mib(totalBytes)} MiB` : `${mib(bytes)} MiB`];
    parts.push(`${mib(rate)} MiB/s`, `${Math.round(messages / secs).toLocaleString('en')} msg/s`);
    if (totalBytes && rate > 0 && bytes < totalBytes) parts.push(`ETA ${duration(Math.max(0, totalBytes - bytes) / rate)}`);
    return parts.join(', ');
  };
  return {
    update(messages: number, bytes: number) {
      const now = Date.now();
      if (out.isTTY) {
        if (now - last < 100) return;
        last = now;
        const width = 24;
        const full = totalBytes ? Math.min(width, Math.round((width * bytes) / totalBytes)) : 0;
        const bar = totalBytes ? `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ` : '';
        out.write(`\r${bar}${text(messages, bytes)}\x1b[K`);
      } else if (now - last >= every) {
        if (last === 0) {
          last = now;
          return;
        }
        last = now;
        out.write(`${label}: ${text(messages, bytes)}\n`);
      }
    },
    end(messages: number, bytes: number, summary: string) {
      const secs = (Date.now() - started) / 1000;
      out.write(`${out.isTTY ? '\r\x1b[K' : ''}${label}: ${summary}; ${text(messages, bytes)}; ${secs.toFixed(1)} s\n`);
    },
  };
}
