import type { DeliveryContext } from '../../src/core/delivery.js';

/** A small valid-looking PDF and PNG, as bytes a scanner would attach. */
export const PDF = Buffer.concat([Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n', 'latin1'), Buffer.alloc(3000, 7), Buffer.from('\n%%EOF\n')]);
export const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(500, 3)]);

/** Base64 cut into 76-character lines (RFC 2045 §6.8). */
function b64(buf: Buffer): string {
  return (buf.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

/** A scanner's message: a text body, a PDF and a PNG; headers the folder records. */
export function scanMessage(opts: { messageId?: string | null; subject?: string; body?: string; to?: string } = {}): string {
  const lines = [
    'From: Scanner <scanner@example.org>',
    `To: ${opts.to ?? 'ogo+1@example.org'}`,
    `Subject: ${opts.subject ?? 'Scan of invoice 4711'}`,
    'Date: Mon, 02 Mar 2026 10:00:00 +0000',
    ...(opts.messageId === null ? [] : [`Message-ID: ${opts.messageId ?? '<scan-1@example.org>'}`]),
    'X-Mailer: ScanStation 3000',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="sep"',
    '',
    '--sep',
    'Content-Type: text/plain; charset=utf-8',
    '',
    opts.body ?? 'one two three four five',
    '--sep',
    'Content-Type: application/pdf; name="scan.pdf"',
    'Content-Disposition: attachment; filename="scan.pdf"',
    'Content-Transfer-Encoding: base64',
    '',
    b64(PDF),
    '--sep',
    'Content-Type: image/png; name="thumb.png"',
    'Content-Disposition: attachment; filename="thumb.png"',
    'Content-Transfer-Encoding: base64',
    '',
    b64(PNG),
    '--sep--',
    '',
  ];
  return lines.join('\r\n');
}

/** A DeliveryContext for calling a target directly. */
export function deliveryCtx(over: Partial<DeliveryContext> = {}): DeliveryContext {
  const recipients = over.recipients ?? ['ogo+1@example.org'];
  const captures = over.captures ?? {};
  return {
    deliveryId: `d-${Math.random().toString(36).slice(2)}`,
    attempt: 1,
    route: 'objects',
    recipients,
    captures,
    recipientCaptures: Object.fromEntries(recipients.map((r) => [r, captures])),
    signal: new AbortController().signal,
    ...over,
  };
}
