import iconv from 'iconv-lite';

/**
 * A charset label as the decoders know it. Mail clients write vendor labels with the `x-` prefix
 * of unregistered names (RFC 2045 §5.1 x-token; Outlook on a Mac: `x-mac-cyrillic`), which the
 * decoders know only without it (`mac-cyrillic`); left alone, such a text read as Latin-1.
 * A label they know is returned as it is; one they know in neither form, unchanged too.
 */
export function decodableCharset(label: string): string {
  const l = label.trim();
  const known = (name: string): boolean => iconv.encodingExists(name);
  if (!l || known(l)) return l;
  const bare = l.replace(/^x-/i, '');
  return bare !== l && known(bare) ? bare : l;
}
