import { statfs } from 'node:fs/promises';

/** Bytes free for us on the fullest of the file systems our bytes land on; undefined when none can be asked. */
export type FreeSpace = () => Promise<number | undefined>;

/**
 * Free space under `dirs` (the data directory and where messages are staged), as statfs(2)
 * reports it to an unprivileged writer (`bavail`: what is left after the root reserve).
 * Remembered for `maxAgeMs`, so a burst of MAIL commands costs one look, not one each.
 * A directory that cannot be asked (not there yet) is left out: no answer refuses no mail.
 */
export function freeSpaceProbe(dirs: string[], maxAgeMs = 100): FreeSpace {
  let last: { at: number; free: Promise<number | undefined> } | undefined;
  const look = async () => {
    const free = await Promise.all(dirs.map((d) => statfs(d).then((s) => s.bavail * s.bsize, () => undefined)));
    const known = free.filter((f): f is number => f !== undefined);
    return known.length ? Math.min(...known) : undefined;
  };
  return () => {
    if (!last || Date.now() - last.at > maxAgeMs) last = { at: Date.now(), free: look() };
    return last.free;
  };
}
