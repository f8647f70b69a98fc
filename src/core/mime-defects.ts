/**
 * What can be wrong with a message that is still parsed, one name each (like Python's
 * `email.errors` defects). A closed list: the names are metric labels and a route can match on
 * them, so an unbounded value (a header's text) never becomes one.
 */
export const MIME_DEFECTS = [
  /** A header line without a colon before the blank line: the body was taken to start there (RFC 5322 §2.1). */
  'missing-header-body-separator',
  /** multipart/* without a boundary parameter (RFC 2046 §5.1.1): the body is kept as text. */
  'no-boundary-in-multipart',
  /** A multipart whose first delimiter never came: no parts, the body is its preamble. */
  'start-boundary-not-found',
  /** A multipart whose close delimiter never came (often a truncated message). */
  'close-boundary-not-found',
  /** Content-Type without a type/subtype (RFC 2045 §5.2): read as text/plain; charset=us-ascii. */
  'invalid-content-type',
  /** A Date field that does not parse (RFC 5322 §3.3): the message has no date. */
  'invalid-date',
  /** A Date whose zone is unknown or missing: read as -0000, i.e. UTC (RFC 5322 §4.3). */
  'unknown-date-zone',
] as const;

export type MimeDefect = (typeof MIME_DEFECTS)[number];

/** The defects of a message in catalogue order, each once (what is stored and shown). */
export function orderDefects(found: Iterable<MimeDefect>): MimeDefect[] {
  const set = new Set(found);
  return MIME_DEFECTS.filter((d) => set.has(d));
}
