import type { ParsedMessage } from '../../core/delivery.js';
import { mailError } from '../../core/errors.js';
import type { HeaderLine, StoredPart } from '../../core/message.js';
import { sanitiseFilename } from '../../mime/filename.js';
import { decodeWords } from '../../mime/header-sniff.js';
import { mimeMatches } from '../../routing/rules.js';
import { MAIL_HEADER_NS, POSTROOM_NS, type Property } from '../objects/properties.js';
import type { CollectMode, FolderSettings } from './settings.js';
import { collectMode } from './settings.js';

/** The headers recorded on every collected document (OpenGroupware Coils' list), when present. */
export const DEFAULT_HEADER_PROPERTIES = [
  'subject', 'x-spam-level', 'from', 'to', 'date', 'x-spam-status', 'reply-to', 'x-virus-scanned',
  'x-bugzilla-classification', 'x-bugzilla-product', 'x-bugzilla-component', 'x-bugzilla-severity',
  'x-bugzilla-status', 'x-bugzilla-url', 'x-mailer', 'x-original-sender', 'mailing-list', 'list-id',
  'x-opengroupware-regarding', 'x-opengroupware-objectid', 'x-original-to', 'in-reply-to', 'cc',
  'x-gm-message-state', 'message-id',
] as const;

/** One document a message leaves in a folder: bytes (a blob already kept), type and name. */
export interface DocumentDraft {
  name: string;
  sha256: string;
  size: number;
  contentType: string;
  properties: Property[];
}

/** The headers in `names` that the message has, decoded (RFC 2047), repeated fields joined. */
export function headerProperties(headers: HeaderLine[], names: readonly string[]): Property[] {
  const out: Property[] = [];
  for (const name of names) {
    const values = headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => decodeWords(v).trim());
    if (values.length) out.push({ namespace: MAIL_HEADER_NS, name, value: values.join(', ') });
  }
  return out;
}

/** `YYYYMMDDTHHMMSSZ` of an ISO time, for file names that sort by arrival. */
function stamp(iso: string): string {
  return iso.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** A file name from the Message-ID and the time received, plus a suffix; sanitised for any file system. */
export function documentName(messageId: string, receivedAt: string, suffix: string, index: number, contentType: string): string {
  const id = messageId.trim().replace(/^<|>$/g, '');
  return sanitiseFilename(`${id}-${stamp(receivedAt)}${suffix}`, { maxLength: 200, index, contentType });
}

const FILEABLE = new Set<StoredPart['kind']>(['attachment', 'inline']);

/**
 * What a message leaves in a folder with these settings. Throws MESSAGE_ID_REQUIRED (5.6.0)
 * without a Message-ID, and BAD_CONTENT (5.6.0) when nothing matches and the folder does not
 * keep unmatched mail.
 */
export function collect(msg: ParsedMessage, settings: FolderSettings, headerNames: readonly string[]): DocumentDraft[] {
  const m = msg.message;
  // Intake sniffs the Message-ID; the parsed headers have it too when the sniff did not run.
  const messageId = m.messageId ?? msg.headers.find(([n]) => n.toLowerCase() === 'message-id')?.[1]?.trim();
  if (!messageId) throw mailError('MESSAGE_ID_REQUIRED', 'Message-ID header required for delivery into a folder');
  const common = headerProperties(msg.headers, headerNames);
  const raw = (): DocumentDraft => ({
    name: documentName(messageId, m.receivedAt, '.eml', 0, 'message/rfc822'),
    sha256: m.rawSha256,
    size: m.size,
    contentType: 'message/rfc822',
    properties: [...common, { namespace: MAIL_HEADER_NS, name: 'contentType', value: 'message/rfc822' }],
  });
  const mode: CollectMode = collectMode(settings);
  if (mode.mode === 'raw') return [raw()];
  if (mode.mode === 'text') {
    const text = msg.parts.find((p) => p.kind === 'text');
    if (!text) {
      if (settings.keepUnmatched) return [raw()];
      throw mailError('BAD_CONTENT', 'This folder collects the text/plain body and the message has none');
    }
    return [
      {
        name: documentName(messageId, m.receivedAt, '.txt', text.idx, 'text/plain'),
        sha256: text.sha256,
        size: text.size,
        contentType: text.contentType,
        properties: [...common, { namespace: MAIL_HEADER_NS, name: 'contentType', value: 'text/plain' }],
      },
    ];
  }
  const matching = msg.parts.filter((p) => FILEABLE.has(p.kind) && mode.types.some((t) => mimeMatches(t, p.contentType)));
  if (!matching.length) {
    if (settings.keepUnmatched) return [raw()];
    throw mailError('BAD_CONTENT', `This folder collects attachments of type ${mode.types.join(', ')} and the message has none`);
  }
  return matching.map((p) => {
    const type = p.contentType.split(';')[0].trim();
    return {
      name: documentName(messageId, m.receivedAt, `-${p.filename ?? `part-${p.idx}`}`, p.idx, type),
      sha256: p.sha256,
      size: p.size,
      contentType: p.contentType,
      properties: [
        ...common,
        { namespace: MAIL_HEADER_NS, name: 'contentType', value: type },
        ...(p.originalFilename ? [{ namespace: POSTROOM_NS, name: 'originalFilename', value: p.originalFilename }] : []),
      ],
    };
  });
}
