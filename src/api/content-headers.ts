/**
 * Headers for serving bytes that came from strangers. Everything here assumes the values are
 * hostile: a file name or media type from a message must not split a header (CRLF), smuggle a
 * path, or make a browser run script on the API's origin.
 */

// RFC 9110 §5.6.2 token characters.
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
// Quoted parameter values: printable ASCII without '"' or '\' (no escapes, no CR/LF, no 8-bit).
const MEDIA_TYPE = new RegExp(`^(${TOKEN})/(${TOKEN})((?:\\s*;\\s*${TOKEN}=(?:${TOKEN}|"[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]*"))*)\\s*$`);

/** A media type safe to put in Content-Type, or application/octet-stream if it is malformed. */
export function safeMediaType(contentType: string | null | undefined): string {
  const m = contentType ? MEDIA_TYPE.exec(contentType.trim()) : null;
  return m ? `${m[1]}/${m[2]}`.toLowerCase() + m[3].replace(/\s*;\s*/g, '; ') : 'application/octet-stream';
}

// C0/C1 controls, DEL, bidi embeddings/overrides/isolates (the "gnp.exe" → "exe.png" trick),
// zero-width and BOM characters, and path separators.
const UNSAFE_IN_NAME = /[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff/\\]/g;

/**
 * A file name for Content-Disposition. The parser already sanitised it; this is the second line
 * of defence because a header is the one place where one stray CR or quote does real harm.
 */
export function cleanFilename(name: string | null | undefined, fallback: string): string {
  const cleaned = (name ?? '').normalize('NFC').replace(UNSAFE_IN_NAME, '_').replace(/^[.\s]+/, '').trim().slice(0, 200);
  return cleaned || fallback;
}

// RFC 8187 attr-char: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
function rfc8187(value: string): string {
  return encodeURIComponent(value).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * Content-Disposition per RFC 6266: an ASCII `filename` every client understands, and
 * `filename*=UTF-8''…` (RFC 8187, ex-5987) when the real name is not plain ASCII.
 */
export function contentDisposition(type: 'attachment' | 'inline', name: string): string {
  // RFC 6266 §4.3: no '%' or '\' in the fallback (some agents unescape them); no quotes (they end it).
  const ascii = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\%]/g, '_');
  const header = `${type}; filename="${ascii}"`;
  return ascii === name ? header : `${header}; filename*=UTF-8''${rfc8187(name)}`;
}

/**
 * Served HTML from a message must not run script or fetch anything (tracking pixels, CSS
 * exfiltration): no script, no remote loads, sandboxed as an opaque origin.
 */
export const HTML_CSP = "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; sandbox";

/** The same after the operator asked to load remote content: images, styles and fonts from the network; still no script, still sandboxed. */
export const HTML_CSP_REMOTE = "default-src 'none'; img-src data: cid: https: http:; style-src 'unsafe-inline' https: http:; font-src https: http:; sandbox";

/** For every other body we serve: nothing loads, nothing runs, even if a browser renders it. */
export const BYTES_CSP = "default-src 'none'; sandbox";
