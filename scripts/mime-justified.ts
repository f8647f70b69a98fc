/**
 * Reviewed disagreements with Python's email where Postroom is right: each names the message,
 * what differs (text, attachment bytes, attachment count) and the clause that says so.
 * `npm run mime-compare` counts these as justified, not as agreeing; an entry whose message
 * no longer disagrees is reported as stale. Reviewed by reading each message and both results.
 */
export interface Justified {
  file: string;
  what: 'text' | 'attachment' | 'count';
  clause: string;
  why: string;
}

export const JUSTIFIED: Justified[] = [
  {
    file: 'test/fixtures/corpus/mime4j--multipartemptypart.msg',
    what: 'text',
    clause: 'RFC 2046 §5.1.1 (close-delimiter; the epilogue is to be ignored)',
    why: 'a delimiter then the close at once: one empty part, no text; Python reads the epilogue ("Epilogue") as the text',
  },
  {
    file: 'test/fixtures/corpus/mime4j--obsolete.msg',
    what: 'text',
    clause: 'RFC 5322 §4.5.5 obs-subject ("Subject" *WSP ":"; §4.1: obsolete syntax MUST be accepted) and §4.2 obs-FWS (white-space-only lines in folding); §3.6.8 ftext (printable US-ASCII only)',
    why: '"Subject :" is a field and its folding holds a blank-looking line; the body starts at the field name with an 8-bit byte. Python takes the whole message for body',
  },
  {
    file: 'test/fixtures/corpus/mime4j--twopart.msg',
    what: 'attachment',
    clause: 'RFC 2045 §6.1 (mechanism is a token) with RFC 822 §3.1.4 (white space between tokens is not part of them)',
    why: '"Content-transfer-encoding: base64 " (trailing space) is base64: Postroom decodes the JPEG; Python does not recognise "base64 " and hands back the base64 text',
  },
  {
    file: 'test/fixtures/corpus/phpmmp--m0018',
    what: 'attachment',
    clause: 'RFC 2045 §6.8 (the body is the base64 encoding of the content; characters outside the alphabet are ignored)',
    why: 'a damaged base64 body (a dangling final character): Postroom decodes what is there (174 bytes); Python returns the undecoded base64 text (233 bytes) as the file',
  },
  {
    file: 'test/fixtures/corpus/spamscope--mail_malformed_1',
    what: 'count',
    clause: 'RFC 2046 §5.1.1 (a boundary must not occur within the parts it encloses) and §5.1.3 (unrecognised subtypes, and so damaged structure, still yield their parts)',
    why: 'the inner multipart reuses the outer boundary (a malware trick); Postroom still surfaces the application/zip part for a scanner, Python loses it',
  },
  {
    file: 'test/fixtures/corpus/mimekit--feedback-report.txt',
    what: 'text',
    clause: 'RFC 2046 §4.1.2 (us-ascii is 7-bit: 8-bit octets are not US-ASCII) with RFC 6532 §3 (UTF-8 is the 8-bit charset of mail)',
    why: 'a UTF-8 byte order mark under a us-ascii label: Postroom reads UTF-8 (the mark is dropped), Python three U+FFFD',
  },
  {
    file: 'test/fixtures/corpus/phpmmp--m0009',
    what: 'text',
    clause: 'RFC 2045 §5.2 default us-ascii, RFC 2046 §4.1.2 (8-bit octets are not US-ASCII), RFC 6532 §3 (UTF-8)',
    why: 'no charset and 8bit UTF-8 ("Vignière"): Postroom reads UTF-8, Python U+FFFD',
  },
  {
    file: 'test/fixtures/corpus/spamscope--mail_outlook_1',
    what: 'text',
    clause: 'RFC 2046 §4.1.2 with RFC 6532 §3 (as above)',
    why: 'a binary file sent as text without a charset: both show garbage; Postroom reads the valid UTF-8 sequences in it, Python replaces every 8-bit byte',
  },
  {
    file: 'test/fixtures/corpus/phpmmp--failure.eml',
    what: 'text',
    clause: 'RFC 2046 §4.1.2 (the charset parameter names the charset): GBK is a superset of GB2312 (IANA registry entry GB2312, EUC-CN), so every octet sequence valid in GB2312 reads the same either way; for octets GB2312 leaves undefined no RFC prescribes a result, and RFC 1122 §1.2.2 (be liberal in what you accept) favours the reading the sending software meant, GBK, as mail readers and WHATWG Encoding §4.2 do',
    why: 'Japanese text under a gb2312 label uses GBK code points (ー): Postroom decodes it, Python replaces them',
  },
  {
    file: 'test/fixtures/corpus/spamscope--mail_test_12',
    what: 'text',
    clause: 'RFC 2046 §4.1.2 (the charset parameter names the charset) with RFC 1122 §1.2.2: GB2312 read as its superset GBK (as above)',
    why: 'UTF-8 text mislabelled GB2312: both show mojibake; Postroom decodes every byte as GBK, Python as strict GB2312 with U+FFFD',
  },
  {
    file: 'test/fixtures/corpus/phpmmp--issue230',
    what: 'text',
    clause: 'RFC 2046 §4.1.2 (the charset parameter names the charset; x-mac-cyrillic is an x-token, RFC 2045 §5.1, for the Macintosh Cyrillic charset); RFC 2049 §2 (7): an unrecognised charset is not read as some other one',
    why: 'UTF-8 bytes (C2 A9, "©") under an x-mac-cyrillic label: Postroom reads them in the charset the part declares ("¬©"); Python does not know the label and the reference script falls back to UTF-8',
  },
];
