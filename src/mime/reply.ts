/**
 * What a person wrote in a reply, without what they replied to. Mail clients quote in three
 * ways, all handled here: `>` before every quoted line (RFC 3676 §4.5), an attribution line
 * ("On Mon, 2 Mar 2026, Alice <a@example.org> wrote:") above the quote, and Outlook's block of
 * headers ("-----Original Message-----", or "From: … Sent: … To: … Subject: …") above the
 * original text with no `>` at all. A signature starts at the "-- " line (RFC 3676 §4.3).
 */

/** CRLF and lone CR as LF. */
export function normaliseNewlines(text: string): string {
  return text.replace(/\r\n?/g, '\n');
}

/**
 * The text before the first line that is one of `delimiters` (surrounding blanks and `>`
 * quoting ignored, case as written): the Redmine/OpenProject "truncate emails after one of
 * these lines" setting, e.g. `--Truncate here--` or `--- Reply above this line ---`.
 */
export function truncateAt(text: string, delimiters: readonly string[]): string {
  const wanted = delimiters.map((d) => d.trim()).filter(Boolean);
  if (!wanted.length) return text;
  const lines = normaliseNewlines(text).split('\n');
  const cut = lines.findIndex((l) => wanted.includes(l.replace(/^[>\s]+/, '').trim()));
  return cut < 0 ? lines.join('\n') : lines.slice(0, cut).join('\n');
}

// Outlook writes its separator in the user's language.
const ORIGINAL_MESSAGE = /^\s*-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original|messaggio originale|oorspronkelijk bericht)\s*-{2,}\s*$/i;
const UNDERSCORES = /^\s*_{10,}\s*$/;
const HEADER_FROM = /^\s*\*?(from|von|de|da|van)\s*:\*?\s+\S/i;
const HEADER_NEXT = /^\s*\*?(sent|date|gesendet|datum|envoyé|enviado|inviato|verzonden|to|an|à|para|a|aan|subject|betreff|objet|asunto|oggetto|onderwerp|cc)\s*:/i;
// "On <date>, <name> wrote:" and its translations; clients wrap it over two or three lines.
const ATTRIBUTION = /^\s*(on\s.+\swrote|am\s.+\sschrieb\s.+|le\s.+\sa\s+écrit|el\s.+\sescribió|il\s.+\sha\s+scritto|op\s.+\sschreef\s.+)\s*:\s*$/is;

/** Index of the line where the quoted original begins (Outlook block or attribution), or -1. */
function quoteStart(lines: string[]): number {
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (ORIGINAL_MESSAGE.test(line)) return i;
    if (UNDERSCORES.test(line) && HEADER_FROM.test(lines[i + 1] ?? '')) return i;
    // A From: line followed closely by Sent:/Date:/To:/Subject: lines is a header block.
    if (HEADER_FROM.test(line)) {
      const next = lines.slice(i + 1, i + 5).filter((l) => HEADER_NEXT.test(l)).length;
      if (next >= 2) return i;
    }
    if (/^\s*(on|am|le|el|il|op)\s/i.test(line) && !line.startsWith('>')) {
      for (let n = 1; n <= 3 && i + n <= lines.length; n++) {
        if (ATTRIBUTION.test(lines.slice(i, i + n).join(' '))) return i;
      }
    }
  }
  return -1;
}

/**
 * The new text of a reply: everything from the quoted original on (Outlook header block,
 * "-----Original Message-----", attribution line) cut, `>` lines removed (inline answers
 * between quotes stay), the signature after "-- " cut, and blank lines at either end trimmed.
 */
export function replyText(text: string): string {
  let lines = normaliseNewlines(text).split('\n');
  const start = quoteStart(lines);
  if (start >= 0) lines = lines.slice(0, start);
  lines = lines.filter((l) => !/^\s*>/.test(l));
  // RFC 3676 §4.3: "-- " (dash dash space); many clients lose the space.
  const sig = lines.findIndex((l) => l === '-- ' || l === '--');
  if (sig >= 0) lines = lines.slice(0, sig);
  return trimBlankLines(lines.join('\n'));
}

/** Blank lines at the start and end removed, trailing spaces of every line too. */
export function trimBlankLines(text: string): string {
  return text
    .split('\n')
    .map((l) => l.replace(/[ \t]+$/, ''))
    .join('\n')
    .replace(/^\n+/, '')
    .replace(/\n+$/, '');
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/**
 * Plain text from HTML, for mail whose HTML mailparser could not convert (the parse step
 * stores html-to-text's text for HTML-only mail; this is the fallback): block ends and <br>
 * become line breaks, tags go, entities are decoded, blockquotes are quoted with `>`.
 */
export function htmlToPlain(html: string): string {
  let s = html.replace(/<(script|style|head)\b[\s\S]*?<\/\1\s*>/gi, '');
  s = s.replace(/<blockquote\b[^>]*>([\s\S]*?)<\/blockquote\s*>/gi, (_m, inner: string) =>
    `\n${htmlToPlain(inner)
      .split('\n')
      .map((l) => `> ${l}`)
      .join('\n')}\n`,
  );
  s = s.replace(/<br\s*\/?>/gi, '\n').replace(/<\/(p|div|li|tr|h[1-6])\s*>/gi, '\n').replace(/<[^>]*>/g, '');
  s = s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    return ENTITIES[e.toLowerCase()] ?? m;
  });
  return trimBlankLines(s.replace(/\n{3,}/g, '\n\n'));
}
