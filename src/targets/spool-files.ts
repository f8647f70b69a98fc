import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';

/**
 * Files in a spool directory appear whole or not at all: written under a hidden temporary
 * name (`.NAME.tmp`, which no pickup glob like `*.ctl` matches), fsynced, then renamed. The
 * caller fsyncs the directory once a batch is in place, so a crash cannot leave a renamed but
 * empty file (ext4 and xfs order the rename before the data otherwise).
 */
export async function writeAtomic(dir: string, name: string, data: Buffer | Readable): Promise<void> {
  if (name !== path.basename(name) || name.startsWith('.')) throw new Error(`unsafe spool file name '${name}'`);
  const tmp = path.join(dir, `.${name}.tmp`);
  const fd = await open(tmp, 'w', 0o640);
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
  } catch (err) {
    await fd.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fd.close();
  await rename(tmp, path.join(dir, name));
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
