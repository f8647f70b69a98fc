import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { mailError } from '../../core/errors.js';

/**
 * Maildir flags (https://cr.yp.to/proto/maildir.html, "info" after ':2,') as IMAP system flags
 * (RFC 3501 §2.3.2; Dovecot maps them so): P passed → $Forwarded, R replied → \Answered,
 * S seen → \Seen, T trashed → \Deleted, D draft → \Draft, F flagged → \Flagged. Lower-case
 * letters are Dovecot's keywords, which only its dovecot-keywords file names: left out.
 */
const MAILDIR_FLAGS: Record<string, string> = { P: '$Forwarded', R: '\\Answered', S: '\\Seen', T: '\\Deleted', D: '\\Draft', F: '\\Flagged' };

/** The IMAP flags a Maildir file name carries ('1733.M1P2.host:2,RS' → \Answered, \Seen). */
export function maildirFlags(name: string): string[] {
  const i = name.lastIndexOf(':2,');
  // Some tools on file systems without ':' write '!2,' or ';2,' (mbsync on Windows, Dovecot's maildir_filename_flags).
  const j = i >= 0 ? i : Math.max(name.lastIndexOf('!2,'), name.lastIndexOf(';2,'));
  if (j < 0) return [];
  return [...new Set([...name.slice(j + 3)].map((c) => MAILDIR_FLAGS[c]).filter((f): f is string => !!f))];
}

/** One file to import, and the flags its name carries. */
export interface FileItem {
  path: string;
  flags: string[];
}

async function dirOrThrow(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    throw mailError('NO_INPUT', `${dir}: ${(err as Error).message}`);
  }
}

/**
 * The messages of a Maildir: the regular files in cur/ and new/ (tmp/ holds deliveries not
 * finished), names sorted. Only names read from the directory are joined to it, and a name
 * with a '/' or that is '.' or '..' cannot come from readdir; symbolic links are not followed
 * (a link could point anywhere on the host), and dot files (Dovecot's own) are skipped.
 */
export async function maildirFiles(dir: string): Promise<FileItem[]> {
  const out: FileItem[] = [];
  let found = false;
  for (const sub of ['cur', 'new']) {
    const d = path.join(dir, sub);
    let names: string[];
    try {
      names = (await readdir(d)).sort();
      found = true;
    } catch {
      continue;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const p = path.join(d, name);
      if ((await lstat(p)).isFile()) out.push({ path: p, flags: sub === 'cur' ? maildirFlags(name) : [] });
    }
  }
  if (!found) {
    await dirOrThrow(dir);
    throw mailError('NO_INPUT', `${dir}: not a Maildir (no cur/ or new/ in it)`);
  }
  return out;
}

/** The regular files directly in a directory (message files, one each: *.eml or any name), sorted; no links followed. */
export async function emlFiles(dir: string): Promise<FileItem[]> {
  const out: FileItem[] = [];
  for (const name of await dirOrThrow(dir)) {
    if (name.startsWith('.')) continue;
    const p = path.join(dir, name);
    if ((await lstat(p)).isFile()) out.push({ path: p, flags: [] });
  }
  return out;
}
