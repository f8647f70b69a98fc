import { closeSync, mkdirSync, openSync, readdirSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * A log file per day, named as the fax gateway named its own (`smtp_YYMMDD.log`, local date), so
 * its operators' log rotation habits and scripts keep working: a new file at the first line of a
 * new day, and files older than `keepDays` removed then. Lines are written synchronously: there
 * is one per SMTP transaction, and a line must survive the crash it may explain.
 */
export class DailyLogFile {
  private fd: number | undefined;
  private day = '';

  constructor(
    private readonly dir: string,
    private readonly keepDays: number,
    private readonly now: () => Date = () => new Date(),
  ) {
    mkdirSync(dir, { recursive: true });
  }

  write(line: string): void {
    const d = this.now();
    const day = `${String(d.getFullYear() % 100).padStart(2, '0')}${String(d.getMonth() + 1).padStart(2, '0')}${String(d.getDate()).padStart(2, '0')}`;
    if (day !== this.day || this.fd === undefined) {
      if (this.fd !== undefined) closeSync(this.fd);
      this.fd = openSync(path.join(this.dir, `smtp_${day}.log`), 'a', 0o640);
      this.day = day;
      this.prune(d);
    }
    writeSync(this.fd, line);
  }

  /** Remove smtp_YYMMDD.log files of days more than keepDays before `d`. */
  private prune(d: Date): void {
    const oldest = new Date(d.getFullYear(), d.getMonth(), d.getDate() - this.keepDays);
    for (const name of readdirSync(this.dir)) {
      const m = /^smtp_(\d\d)(\d\d)(\d\d)\.log$/.exec(name);
      if (!m) continue;
      const day = new Date(2000 + Number(m[1]), Number(m[2]) - 1, Number(m[3]));
      if (day < oldest) unlinkSync(path.join(this.dir, name));
    }
  }
}
