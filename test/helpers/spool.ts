import { readdirSync } from 'node:fs';
import type { DeliveryContext, ParsedMessage } from '../../src/core/delivery.js';
import { createSpoolTarget, spoolParams } from '../../src/targets/spool.js';
import { fakeParsed } from './parsed.js';

const spool = createSpoolTarget();
export const ctx = (id: string): DeliveryContext => ({ deliveryId: id, attempt: 1, route: 'fax', recipients: ['a@x'], captures: {}, recipientCaptures: { 'a@x': {} }, signal: new AbortController().signal });
export const withAttachment = (filename: string): ParsedMessage =>
  fakeParsed({
    rcptTo: ['a@x'],
    text: 'see attached',
    parts: [
      { kind: 'text', contentType: 'text/plain', body: 'see attached' },
      { kind: 'attachment', contentType: 'application/pdf', filename, body: '%PDF-1.4' },
    ],
  });

/** Every name a spool of one attachment named `filename` leaves, after a real write to a real directory. */
export async function spoolNames(dir: string, filename: string, id = 'dlv'): Promise<string[]> {
  const p = spoolParams.parse({ dir, format: 'txt', attachments: true, prefix: 'FAX_'.padEnd(64, 'x'), control: { f: '<%attachmentFiles%>' } });
  await spool.deliver(withAttachment(filename), p, ctx(id));
  return readdirSync(dir);
}

