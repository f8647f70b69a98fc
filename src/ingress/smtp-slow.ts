import type { Readable } from 'node:stream';
import { mailError, type MailError } from '../core/errors.js';

/** How long DATA may take, and how fast it must flow (smtp.dataTimeout, smtp.minDataRate…). */
export interface DataPace {
  /** Whole DATA phase, ms: past it the session ends. */
  deadline: number;
  /** Bytes per second owed after the grace period; 0: no rate check. */
  minRate: number;
  /** Ms a client may send nothing before the rate counts. */
  grace: number;
}

/**
 * Watches one DATA transfer and calls `breach` (once) when it is too slow. The idle timeout
 * alone cannot: any byte resets it, so one byte every few seconds held a session (and a slot of
 * maxClients) for as long as the client liked. As Postfix's smtpd_min_data_rate does, each byte
 * received buys 1/minRate s of time on top of the grace period: the client is cut off once
 * `elapsed > grace + bytes / minRate`, and in any case after `deadline`. A real MTA on a slow
 * link (1 KiB/s) passes; a trickle does not. `stream.byteLength` is the count smtp-server keeps
 * as it parses. Returns the function that stops the watch (call it when the data has ended).
 */
export function watchDataPace(stream: Readable & { byteLength?: number }, pace: DataPace, breach: (err: MailError) => void): () => void {
  const start = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    const elapsed = Date.now() - start;
    const bytes = stream.byteLength ?? 0;
    if (elapsed >= pace.deadline) {
      return breach(mailError('TIMEOUT', `DATA not complete after ${seconds(pace.deadline)} s (smtp.dataTimeout); closing connection`));
    }
    const due = pace.minRate > 0 ? pace.grace + (bytes / pace.minRate) * 1000 : Infinity;
    if (elapsed >= due) {
      return breach(
        mailError('TIMEOUT', `DATA too slow: ${bytes} bytes in ${seconds(elapsed)} s, under ${pace.minRate} bytes/s (smtp.minDataRate); closing connection`),
      );
    }
    timer = setTimeout(check, Math.max(20, Math.min(pace.deadline, due) - elapsed));
    timer.unref();
  };
  timer = setTimeout(check, Math.min(pace.deadline, pace.minRate > 0 ? pace.grace : Infinity));
  timer.unref();
  const stop = () => clearTimeout(timer);
  // 'finish': the parser has written the last byte (end of data seen), read or not.
  stream.once('finish', stop);
  stream.once('close', stop);
  return stop;
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;
