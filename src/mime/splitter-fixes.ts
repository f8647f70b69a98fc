import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { MimeDefect } from '../core/mime-defects.js';
import { isBlank, isHeaderLine } from './header-separator.js';

/**
 * Corrections to `@zone-eu/mailsplit`, the splitter inside mailparser, applied to its classes
 * when mailparser is first loaded. They live here, in our code, rather than in a patched copy
 * under node_modules, so they survive `npm ci` (docs/decisions.md); the version they were
 * written against is pinned in package.json `overrides`, and applySplitterFixes refuses to
 * start when a method it replaces is gone.
 */

/** A mailsplit MimeNode, only what the fixes read and set. */
export interface SplitMimeNode {
  parentNode?: SplitMimeNode | false | null;
  headers?: { get(key: string): string[] };
  contentType?: string | false;
  charset?: string | false;
  multipart?: string | false;
  _boundary?: Buffer | false;
  rfc822?: boolean;
  /** What the fixes found wrong with this node (read by parse.ts when the node is emitted). */
  postroomDefects?: MimeDefect[];
  /** A multipart's close delimiter was seen (set by the checkBoundary wrapper). */
  postroomClosed?: boolean;
  /** A multipart's lines before its first delimiter (kept by parse.ts, bounded). */
  postroomPreamble?: Buffer[];
  /** parse.ts has taken the node (its headers are read; data before it is the delimiter line). */
  postroomEmitted?: boolean;
  /** A delimiter of this multipart was seen (its first part began). */
  postroomDelimited?: boolean;
  /** Lines of a part's header block from the first that is no header field on: its body's start. */
  postroomLeadingBody?: Buffer;
  _headersLines?: Buffer[];
  _headerlen?: number;
  /** Parts seen under this node (counted by parse.ts). */
  postroomChildren?: number;
  _parentBoundary?: Buffer | false;
  _parentBoundaryOwner?: SplitMimeNode | false;
}

interface SplitterClass {
  prototype: {
    compareBoundary(line: Buffer, startpos: number, boundary: Buffer): 1 | 2 | false;
    checkBoundary(this: { node: SplitMimeNode }, line: Buffer): 1 | 2 | 3 | 4 | false;
  };
}
interface MimeNodeClass {
  prototype: { parseHeaders(this: SplitMimeNode): void };
}

/**
 * RFC 2046 §5.1.1: a delimiter line is `--boundary`, `--` for the close, then optional
 * transport padding (linear white space) the receiver MUST accept, then the line end.
 * mailsplit took the padding for content, so a padded first delimiter lost the text part and
 * a padded close left the delimiter inside an attachment. 1: next part, 2: close, false: not one.
 */
export function compareBoundary(line: Buffer, startpos: number, boundary: Buffer): 1 | 2 | false {
  const after = startpos + 2 + boundary.length;
  // As before: at least one byte past `--boundary` (a line end or the `--`).
  if (line.length <= after) return false;
  for (let i = 0; i < boundary.length; i++) if (line[startpos + 2 + i] !== boundary[i]) return false;
  let i = after;
  let close = false;
  if (line[i] === 0x2d && line[i + 1] === 0x2d) {
    close = true;
    i += 2;
  }
  while (i < line.length && (line[i] === 0x20 || line[i] === 0x09)) i++;
  if (i < line.length && line[i] === 0x0d) i++;
  if (i < line.length && line[i] === 0x0a) i++;
  return i === line.length ? (close ? 2 : 1) : false;
}

/** The node's Content-Type as the sender wrote it (first field), or null. */
function declaredType(node: SplitMimeNode): string | null {
  return node.headers?.get('Content-Type')[0] ?? null;
}

/**
 * After mailsplit has read a node's headers: the RFC defaults it does not apply, each noted as
 * a defect on the node where the message was at fault.
 */
export function fixNodeType(node: SplitMimeNode): void {
  const defects: MimeDefect[] = [];
  const declared = declaredType(node);
  const parent = node.parentNode || null;
  if (declared === null && parent && parent.multipart === 'digest') {
    // RFC 2046 §5.1.5: in a digest a part without Content-Type is message/rfc822.
    node.contentType = 'message/rfc822';
    node.rfc822 = true;
  } else if (node.contentType && !/^[^/\s]+\/[^/\s]+$/.test(node.contentType)) {
    // RFC 2045 §5.2: an invalid Content-Type (`text`, no subtype) means text/plain; charset=us-ascii.
    node.contentType = 'text/plain';
    node.charset = node.charset || 'us-ascii';
    node.multipart = false;
    node.rfc822 = false;
    defects.push('invalid-content-type');
  }
  if (node._boundary && /[ \t]$/.test(node._boundary.toString('latin1'))) {
    // RFC 2046 §5.1.1: a boundary never ends in white space (bcharsnospace); trailing white
    // space in the parameter is transport padding, as Python's email reads it.
    node._boundary = Buffer.from(node._boundary.toString('latin1').replace(/[ \t]+$/, ''), 'latin1');
    if (!node._boundary.length) node._boundary = false;
  }
  if (node.multipart && !node._boundary) {
    // RFC 2046 §5.1.1 makes the boundary parameter mandatory; without it no part can be found.
    // The body is kept as text (as Python's email does) rather than dropped.
    node.multipart = false;
    node.contentType = 'text/plain';
    defects.push('no-boundary-in-multipart');
  }
  if (defects.length) (node.postroomDefects ??= []).push(...defects);
}

/**
 * A body part's header block that holds a line which is no header field (no colon, RFC 5322
 * §2.2; a part's header block is RFC 822 syntax, RFC 2046 §5.1.1) ends before that line: the
 * blank line was missing and the body starts there (as Python's email reads it,
 * MissingHeaderBodySeparatorDefect). The top-level header block is cut before the splitter
 * (header-separator.ts); this does it for the parts, where the splitter had taken the lines of
 * a body for headers, and the part lost them.
 */
export function cutHeaderBlock(node: SplitMimeNode): void {
  const lines = node._headersLines;
  if (!lines?.length) return;
  // An embedded message may begin with its mbox `From ` line, as a top-level one may.
  const embedded = !!node.parentNode && node.parentNode.contentType === 'message/rfc822';
  const at = lines.findIndex((l, i) => !isBlank(l) && !isHeaderLine(l, embedded && i === 0));
  if (at < 0) return;
  let rest = Buffer.concat(lines.slice(at));
  // Without a blank line the part ended at a delimiter, whose line end is the last one here.
  if (!isBlank(lines[lines.length - 1])) rest = rest.subarray(0, rest.length - (rest.at(-1) === 0x0a ? (rest.at(-2) === 0x0d ? 2 : 1) : 0));
  const kept = lines.slice(0, at);
  node._headersLines = kept;
  node._headerlen = kept.reduce((n, l) => n + l.length, 0);
  node.postroomLeadingBody = rest;
  (node.postroomDefects ??= []).push('missing-header-body-separator');
}

/**
 * A delimiter line of a multipart further out than the one the current part is in. RFC 2046
 * §5.1.1 has a boundary never occur inside what it encloses (nor an enclosing boundary as a
 * prefix), so a delimiter of an enclosing multipart ends every part inside it, even when an
 * inner multipart was never closed (a truncated forward). mailsplit looks at the nearest two
 * boundaries only, and took the outer delimiters for the inner part's content.
 */
function enclosingDelimiter(node: SplitMimeNode, line: Buffer): SplitMimeNode | null {
  let at = 0;
  if (line[0] === 0x0d || line[0] === 0x0a) at = line[0] === 0x0d && line[1] === 0x0a ? 2 : 1;
  if (line[at] !== 0x2d || line[at + 1] !== 0x2d) return null;
  const nearest = node._parentBoundaryOwner || null;
  for (let n = nearest ? nearest.parentNode : null; n; n = n.parentNode) {
    if (n.multipart && n._boundary && !n.postroomClosed && compareBoundary(line, at, n._boundary)) return n;
  }
  return null;
}

let applied = false;

/** Install the fixes on mailsplit's classes (once per process or thread). */
export function applySplitterFixes(): void {
  if (applied) return;
  // mailsplit is mailparser's dependency, not ours: resolve it from mailparser, so the classes
  // patched are the ones mailparser uses.
  const fromMailparser = createRequire(fileURLToPath(import.meta.resolve('mailparser')));
  const mailsplit = fromMailparser('@zone-eu/mailsplit') as { Splitter?: SplitterClass; MimeNode?: MimeNodeClass };
  const splitter = mailsplit.Splitter?.prototype;
  const node = mailsplit.MimeNode?.prototype;
  if (typeof splitter?.compareBoundary !== 'function' || typeof splitter.checkBoundary !== 'function' || typeof node?.parseHeaders !== 'function') {
    throw new Error('mailsplit changed: compareBoundary, checkBoundary or parseHeaders is gone; src/mime/splitter-fixes.ts needs them');
  }
  splitter.compareBoundary = compareBoundary;
  const checkBoundary = splitter.checkBoundary;
  splitter.checkBoundary = function (line) {
    let found = checkBoundary.call(this, line);
    if (!found) {
      const outer = enclosingDelimiter(this.node, line);
      if (outer) {
        // Re-aim the part at the enclosing multipart whose delimiter this is: mailsplit then
        // reads it as that multipart's next part (3) or its close (4).
        this.node._parentBoundary = outer._boundary;
        this.node._parentBoundaryOwner = outer;
        found = checkBoundary.call(this, line);
      }
    }
    // 2: the current multipart's close; 4: the close of the multipart the current part is in.
    if (found === 1) this.node.postroomDelimited = true;
    else if (found === 3 && this.node._parentBoundaryOwner) this.node._parentBoundaryOwner.postroomDelimited = true;
    if (found === 2) this.node.postroomClosed = true;
    else if (found === 4 && this.node._parentBoundaryOwner) this.node._parentBoundaryOwner.postroomClosed = true;
    return found;
  };
  const parseHeaders = node.parseHeaders;
  node.parseHeaders = function (this: SplitMimeNode) {
    // mailsplit calls it more than once for some nodes; the first call does the work.
    const first = !this.headers;
    if (first && this.parentNode) cutHeaderBlock(this);
    parseHeaders.call(this);
    if (first) fixNodeType(this);
    if (this.postroomLeadingBody && (this.multipart || this.contentType === 'message/rfc822')) {
      // Lines in a container's header block cannot be replayed through the splitter; dropped, as before.
      delete this.postroomLeadingBody;
    }
  };
  applied = true;
}
