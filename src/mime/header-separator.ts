/**
 * A header field line (RFC 5322 §2.2: printable name, colon; obsolete syntax §4.5 allows white
 * space before the colon), a folded continuation, or the mbox `From ` line some messages keep.
 */
export function isHeaderLine(line: Buffer, first: boolean): boolean {
  // Python's email and mailsplit both read a white-space first line as a (stray) continuation,
  // and real mail has one (a blank-padded first line before Delivered-To:).
  if (line[0] === 0x20 || line[0] === 0x09) return true;
  if (first && line.subarray(0, 5).toString('latin1') === 'From ') return true;
  let i = 0;
  while (i < line.length && line[i] >= 0x21 && line[i] <= 0x7e && line[i] !== 0x3a) i++;
  if (i === 0) return false;
  while (i < line.length && (line[i] === 0x20 || line[i] === 0x09)) i++;
  return line[i] === 0x3a;
}

/** A line holding only its line end: the separator itself. */
export function isBlank(line: Buffer): boolean {
  return line.length === 0 || (line.length === 1 && line[0] === 0x0a) || (line.length === 2 && line[0] === 0x0d && line[1] === 0x0a);
}

/**
 * Feeds a message through, inserting the blank line that ends the top-level header block
 * before the first line that cannot be a header (RFC 5322 §2.1: header fields, an empty line,
 * the body). Without it the splitter read the whole body as headers and the message had no
 * text. This is what Python's email does (MissingHeaderBodySeparatorDefect); `onMissing` is
 * told. Only the first `limit` bytes are looked at: past them the splitter's own header
 * limit applies. Nested parts' headers are not checked here.
 */
export async function* separateHeaders(
  raw: AsyncIterable<Uint8Array>,
  limit: number,
  onMissing: () => void,
): AsyncGenerator<Uint8Array> {
  let held: Buffer = Buffer.alloc(0);
  let scanned = 0;
  let first = true;
  let done = false;
  const decide = (final: boolean): Buffer | null => {
    for (;;) {
      const nl = held.indexOf(0x0a, scanned);
      if (nl < 0 && !final) return null;
      const end = nl < 0 ? held.length : nl + 1;
      const line = held.subarray(scanned, end);
      if (!line.length) return null;
      if (isBlank(line)) return held;
      if (!isHeaderLine(line, first)) {
        onMissing();
        const prevCrlf = scanned >= 2 && held[scanned - 2] === 0x0d;
        const sep = Buffer.from(scanned === 0 || prevCrlf ? '\r\n' : '\n');
        return Buffer.concat([held.subarray(0, scanned), sep, held.subarray(scanned)]);
      }
      first = false;
      scanned = end;
      if (nl < 0) return null;
      if (scanned > limit) return held;
    }
  };
  for await (const chunk of raw) {
    if (done) {
      yield chunk;
      continue;
    }
    held = held.length ? Buffer.concat([held, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const out = decide(false);
    if (out) {
      done = true;
      held = Buffer.alloc(0);
      yield out;
    } else if (held.length > limit) {
      done = true;
      yield held;
    }
  }
  if (!done && held.length) yield decide(true) ?? held;
}
