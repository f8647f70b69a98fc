/**
 * Whether a process with this pid runs on this host. Signal 0 only asks; EPERM means it runs
 * as another user (the MTA's pipe user, say). Anything but "no such process" counts as alive:
 * a caller takes back leases and removes files only of processes surely gone.
 */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
