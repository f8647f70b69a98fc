import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fsyncDir } from '../store/blobs.js';

/**
 * The longest file name a spool file may have, in bytes: 255 is NAME_MAX on every Linux file
 * system a spool directory lives on (ext4, xfs, btrfs, tmpfs, NFS), counted in bytes, not
 * characters; its temporary name (`.NAME.tmp`) takes 5 more.
 */
export const SPOOL_NAME_MAX = 255 - '..tmp'.length;

/**
 * A set of spool files that appears all or nothing. Each file is written under a hidden
 * temporary name (`.NAME.tmp`, which no pickup glob like `*.ctl` matches) and fsynced; only
 * when every one is written are they renamed, in the order added, with the directory fsynced
 * before the last one (the control file: the consumer's signal) and after it, so a crash cannot
 * leave a control file naming data that is not there (ext4 and xfs may otherwise order the
 * rename before the data). Any failure removes what this set wrote, temporary or renamed.
 */
export class SpoolFiles {
  private readonly temps: string[] = [];
  private readonly names: string[] = [];
  private readonly renamed: string[] = [];

  constructor(private readonly dir: string) {}

  /** Write one file under its temporary name. */
  async add(name: string, data: Buffer | Readable): Promise<void> {
    // An assertion against a bug in the names' sanitising, not a mail outcome: spoolError turns
    // it into TARGET_TEMPFAIL, so the mail waits for a fixed build rather than being written.
    if (name !== path.basename(name) || name.startsWith('.')) throw new Error(`unsafe spool file name '${name}'`);
    const tmp = path.join(this.dir, `.${name}.tmp`);
    const fd = await open(tmp, 'w', 0o640);
    this.temps.push(tmp);
    this.names.push(name);
    try {
      if (Buffer.isBuffer(data)) {
        let off = 0;
        while (off < data.length) off += (await fd.write(data, off, data.length - off)).bytesWritten;
      } else {
        for await (const chunk of data as AsyncIterable<Buffer>) {
          let off = 0;
          while (off < chunk.length) off += (await fd.write(chunk, off, chunk.length - off)).bytesWritten;
        }
      }
      await fd.sync();
    } finally {
      await fd.close();
    }
  }

  /** Rename every file into place, the last one added last. */
  async commit(): Promise<void> {
    for (const [i, tmp] of this.temps.entries()) {
      if (i === this.temps.length - 1 && i > 0) await fsyncDir(this.dir);
      const final = path.join(this.dir, this.names[i]);
      await rename(tmp, final);
      this.renamed.push(final);
    }
    await fsyncDir(this.dir);
  }

  /** Remove whatever this set wrote (after a failure): nothing half is left for a consumer. */
  async abort(): Promise<void> {
    await Promise.all([...this.temps, ...this.renamed].map((p) => unlink(p).catch(() => {})));
  }
}

/** A control file's content: top-level `key: value` pairs and `[section]`s of them. */
export type IniData = Record<string, string | Record<string, string>>;

/**
 * One INI value on one line. Values come from mail (a subject, a From: name): a CR or LF in
 * them would start a new line, so `Subject: x\n[system]\nuser_app_id=1` could forge keys the
 * fax daemon trusts. Control characters become spaces.
 */
export function iniValue(v: string): string {
  // eslint-disable-next-line no-control-regex
  return v.replace(/[\u0000-\u001f\u007f\u0085\u2028\u2029]/g, ' ');
}

/** Render INI text: top-level keys first (before any section, as INI readers expect), then sections. */
export function renderIni(data: IniData, eol = '\r\n'): string {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(data)) if (typeof v === 'string') lines.push(`${k}=${iniValue(v)}`);
  for (const [section, v] of Object.entries(data)) {
    if (typeof v === 'string') continue;
    if (lines.length) lines.push('');
    lines.push(`[${section}]`);
    for (const [k, val] of Object.entries(v)) lines.push(`${k}=${iniValue(val)}`);
  }
  return lines.join(eol) + eol;
}
