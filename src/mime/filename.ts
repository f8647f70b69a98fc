/**
 * Attachment file names as senders give them are hostile input: they end up in
 * Content-Disposition headers, on file systems (spool targets, downloads) and on screens.
 * `sanitiseFilename` turns any of them into a name that is safe in all three places.
 */

/** Windows device names: opening `CON.txt` on Windows opens the console, not a file. */
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[1-9¹²³]|lpt[1-9¹²³])$/i;

/**
 * Characters removed outright: C0/C1 controls and DEL (header injection, terminal escapes), and
 * bidi controls (U+202A–202E, U+2066–2069, U+200E/F, U+061C): "invoice\u202Efdp.exe" shows as
 * "invoiceexe.pdf" (the "RLO extension spoofing" trick). Zero-width and BOM too, so two names
 * that look the same are the same.
 */
const STRIP = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;

/** Path separators and characters Windows forbids in names; also quotes that break headers. */
const REPLACE = /[/\\:*?"<>|]/g;

/** A few common types, for the fallback name's extension; anything else is .bin. */
const EXTENSIONS: Record<string, string> = {
  'text/plain': 'txt',
  'text/html': 'html',
  'text/csv': 'csv',
  'text/calendar': 'ics',
  'message/rfc822': 'eml',
  'message/delivery-status': 'txt',
  'application/pdf': 'pdf',
  'application/zip': 'zip',
  'application/json': 'json',
  'application/xml': 'xml',
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/gif': 'gif',
  'image/webp': 'webp',
  'image/svg+xml': 'svg',
  'audio/mpeg': 'mp3',
  'video/mp4': 'mp4',
};

/** The name given to a part that has none (or none usable): `attachment-3.png`. */
export function fallbackFilename(index: number, contentType: string): string {
  const ext = EXTENSIONS[contentType.toLowerCase().split(';')[0].trim()] ?? 'bin';
  return `attachment-${index}.${ext}`;
}

/** Cut `s` to at most `max` UTF-8 bytes without splitting a character. */
function cutBytes(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s;
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > max) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/**
 * A safe file name for `name`, or the fallback when nothing usable is left. Safe means: no
 * path separators or `..` (path traversal out of a spool directory), no control characters or
 * NUL (header injection, C string truncation), no bidi overrides, no Windows reserved device
 * names with or without extension, no trailing dots or spaces (Windows strips them, so
 * `evil.exe.` becomes `evil.exe`), no leading dots (hidden files), at most `maxLength` UTF-8
 * bytes with the extension kept.
 */
export function sanitiseFilename(
  name: string | null | undefined,
  opts: { maxLength: number; index: number; contentType: string },
): string {
  const fallback = fallbackFilename(opts.index, opts.contentType);
  if (!name) return fallback;
  // Line breaks and tabs separate words: keep the gap, drop the character.
  let s = name.normalize('NFC').replace(/[\t\r\n]+/g, ' ').replace(STRIP, '');
  // Keep only the last path component: "C:\\Users\\x\\evil.exe" and "../../etc/passwd" both
  // become their base name rather than a mangled path.
  s = s.split(/[/\\]/).filter((c) => c.length > 0).pop() ?? '';
  s = s.replace(REPLACE, '_');
  s = s.replace(/\s+/g, ' ').trim();
  s = s.replace(/^[.\s]+/, '').replace(/[.\s]+$/, '');
  // ".." as a component is gone with the split, but "a..b" collapses too so no part of the
  // name can ever read as a parent directory.
  s = s.replace(/\.{2,}/g, '.');
  if (!s) return fallback;

  const dot = s.lastIndexOf('.');
  let base = dot > 0 ? s.slice(0, dot) : s;
  let ext = dot > 0 ? s.slice(dot + 1) : '';
  // Windows reserves the device name whatever follows the first dot: "nul.tar.gz" is NUL too.
  const stem = base.split('.')[0].trim();
  if (WINDOWS_RESERVED.test(stem)) base = `_${base}`;

  const max = opts.maxLength;
  // An extension longer than a quarter of the budget is not an extension worth keeping whole.
  if (Buffer.byteLength(ext) > Math.floor(max / 4)) ext = cutBytes(ext, Math.floor(max / 4));
  const room = max - (ext ? Buffer.byteLength(ext) + 1 : 0);
  base = cutBytes(base, room).replace(/[.\s]+$/, '');
  if (!base) return fallback;
  return ext ? `${base}.${ext}` : base;
}
