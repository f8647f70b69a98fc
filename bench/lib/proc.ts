import { readFileSync } from 'node:fs';

/** A memory field of /proc/PID/status in bytes (VmHWM: peak resident set; VmRSS: now). */
export function procMemory(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/**
 * CPU time (user + system) a process has used so far, in milliseconds (/proc/PID/stat). With
 * `mainThread`, only its main thread's (/proc/PID/task/PID/stat): Node's event loop, which
 * serves every SMTP session and so bounds the message rate, apart from worker threads.
 */
export function procCpuMs(pid: number, mainThread = false): number {
  const stat = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}
