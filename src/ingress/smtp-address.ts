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

// RFC 5321 §4.1.2 Mailbox, with RFC 6531's UTF-8 (any non-ASCII character) in both parts.
const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~\\-\\u0080-\\u{10FFFF}]";
const DOT_STRING = `${ATEXT}+(?:\\.${ATEXT}+)*`;
const QUOTED_STRING = '"(?:[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e\\u0080-\\u{10FFFF}]|\\\\[\\x20-\\x7e])*"';
const LABEL = '[A-Za-z0-9\\u0080-\\u{10FFFF}](?:[A-Za-z0-9\\-\\u0080-\\u{10FFFF}]*[A-Za-z0-9\\u0080-\\u{10FFFF}])?';
const MAILBOX = new RegExp(`^(?:${DOT_STRING}|${QUOTED_STRING})@(?:${LABEL}(?:\\.${LABEL})*|\\[[^\\[\\]\\\\\\s]+\\])$`, 'u');

/** Whether `address` is an RFC 5321 Mailbox (`local@domain`, without angle brackets). */
export function isMailbox(address: string): boolean {
  return MAILBOX.test(address);
}

/**
 * ESMTP parameters of MAIL and RCPT that we take: those of the extensions the EHLO reply
 * advertises (SIZE RFC 1870, BODY RFC 6152, SMTPUTF8 RFC 6531, REQUIRETLS RFC 8689 under TLS,
 * AUTH RFC 4954 §5). DSN (RFC 3461) is not offered, so its RET/ENVID/NOTIFY/ORCPT are not taken.
 */
const KNOWN_PARAMETERS = {
  mail: new Set(['SIZE', 'BODY', 'SMTPUTF8', 'REQUIRETLS', 'AUTH']),
  rcpt: new Set<string>(),
};

/**
 * The first parameter of a MAIL or RCPT command that no extension we offer defines, or
 * undefined. RFC 5321 §4.1.1.11: such a command is answered 555, not ignored, so a client that
 * relies on an extension (an unknown one, or one we do not advertise) learns it is not there.
 */
export function unknownParameter(command: 'mail' | 'rcpt', args: Record<string, unknown> | false | undefined): string | undefined {
  return Object.keys(args || {}).find((k) => !KNOWN_PARAMETERS[command].has(k.toUpperCase()));
}
