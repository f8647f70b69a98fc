// A stand-in for SP inside a quoted local part while smtp-server parses the command: a
// private-use character no real address carries, and one the library's checks let through.
const SPACE_STANDIN = '\uE000';

/**
 * RFC 5321 §4.1.2 allows a quoted local part with spaces (`<"Jan Novak/ACME/+4201"@fax>`, as
 * fax gateways use), but smtp-server splits MAIL/RCPT commands on whitespace before reading
 * the address. Inside `<"…">` the spaces are swapped for a stand-in before the library parses
 * and swapped back in the address it returns. Nothing else of the command is touched.
 */
export function hideQuotedSpaces(command: string): { text: string; restore(address: string): string } {
  const text = command.replace(/<"((?:[^"\\\r\n]|\\[^\r\n])*)"@/g, (_m, local: string) =>
    `<"${local.replaceAll(' ', SPACE_STANDIN)}"@`,
  );
  return { text, restore: (address) => address.replaceAll(SPACE_STANDIN, ' ') };
}
