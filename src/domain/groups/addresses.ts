/**
 * The addresses a group answers at. LOCAL@DOMAIN takes posts; LOCAL+unsubscribe@DOMAIN turns
 * delivery off for the sender; LOCAL+bounces-USER=HOST@DOMAIN is the per-member return path
 * (VERP, as qmail and Mailman do it): a bounce names the member in its envelope recipient, so
 * it is attributed without parsing the DSN, whatever the remote MTA's report looks like.
 */

/** What a recipient address means to a group. */
export type GroupRecipient =
  | { kind: 'post'; list: string }
  | { kind: 'unsubscribe'; list: string }
  | { kind: 'bounce'; list: string; member: string };

/** Split an address at its last '@'. */
function split(address: string): [string, string] {
  const at = address.lastIndexOf('@');
  return at < 0 ? [address, ''] : [address.slice(0, at), address.slice(at + 1)];
}

/** The per-member return path: LOCAL+bounces-USER=HOST@DOMAIN. */
export function bounceAddress(list: string, member: string): string {
  const [local, domain] = split(list);
  const [user, host] = split(member);
  return `${local}+bounces-${user}=${host}@${domain}`;
}

/** Where a member sends mail to stop receiving copies (List-Unsubscribe). */
export function unsubscribeAddress(list: string): string {
  const [local, domain] = split(list);
  return `${local}+unsubscribe@${domain}`;
}

/** USER=HOST → USER@HOST; the member's host cannot contain '=', its local part can: the last '=' is the '@'. */
function decodeMember(encoded: string): string | undefined {
  const eq = encoded.lastIndexOf('=');
  return eq > 0 && eq < encoded.length - 1 ? `${encoded.slice(0, eq)}@${encoded.slice(eq + 1)}` : undefined;
}

/** Read a recipient: a post to the list, an unsubscribe request, or a bounce for a member. */
export function classifyRecipient(rcpt: string): GroupRecipient {
  const [local, domain] = split(rcpt.trim().replace(/^<|>$/g, '').toLowerCase());
  const plus = local.indexOf('+');
  if (plus < 0) return { kind: 'post', list: `${local}@${domain}` };
  const list = `${local.slice(0, plus)}@${domain}`;
  const extension = local.slice(plus + 1);
  if (extension === 'unsubscribe') return { kind: 'unsubscribe', list };
  if (extension.startsWith('bounces-')) {
    const member = decodeMember(extension.slice('bounces-'.length));
    if (member) return { kind: 'bounce', list, member };
  }
  // Postfix's XVERP (default_verp_delimiters `+=`): an MTA that relays with MAIL FROM:<list@…>
  // XVERP sends each copy from LIST+USER=HOST@DOMAIN (LIST+bounces+USER=HOST@ from a
  // list+bounces@ sender), so a bounce names the member in that form. The host must have a
  // dot: a sender's own tag (list+a=b@) is not read as a member.
  const xverp = decodeMember(extension.replace(/^bounces\+/, ''));
  if (xverp && /^[^@]+@[^@]+\.[^@]+$/.test(xverp)) return { kind: 'bounce', list, member: xverp };
  // Any other extension is the sender's own tagging (list+tag@): a post to the list.
  return { kind: 'post', list };
}
