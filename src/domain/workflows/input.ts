import { Readable } from 'node:stream';
import type { ParsedMessage } from '../../core/delivery.js';
import { mailError } from '../../core/errors.js';
import { mimeMatches } from '../../routing/rules.js';

/** The bytes a workflow runs on: a blob already kept, and its type. */
export interface WorkflowInput {
  sha256: string;
  size: number;
  contentType: string;
  open(): Promise<Readable>;
}

/**
 * A workflow's input from a message: `text/plain` is the text body (decoded to UTF-8); any
 * other type is the first attachment (or inline part) of that type, in message order. Nothing
 * of that type: a permanent 5.6.0, since sending the same message again will not add it.
 */
export function workflowInput(msg: ParsedMessage, type: string): WorkflowInput {
  if (type === 'text/plain') {
    const text = msg.parts.find((p) => p.kind === 'text');
    if (!text) {
      // An empty body is still input (a command counting words says 0), not an error.
      return { sha256: '', size: 0, contentType: 'text/plain; charset=utf-8', open: async () => Readable.from([]) };
    }
    return { sha256: text.sha256, size: text.size, contentType: text.contentType, open: () => msg.openPart(text) };
  }
  const part = msg.parts.find((p) => (p.kind === 'attachment' || p.kind === 'inline') && mimeMatches(type, p.contentType));
  if (!part) throw mailError('BAD_CONTENT', `This workflow takes the first attachment of type ${type} and the message has none`);
  return { sha256: part.sha256, size: part.size, contentType: part.contentType, open: () => msg.openPart(part) };
}

/** The metadata a workflow sees: environment variables for a command, x-postroom-* headers for a POST. */
export function workflowMeta(msg: ParsedMessage, extra: Record<string, string>): Record<string, string> {
  const m = msg.message;
  return {
    POSTROOM_MESSAGE_ID: m.id,
    POSTROOM_RFC822_MESSAGE_ID: m.messageId ?? '',
    POSTROOM_MAIL_FROM: m.mailFrom,
    POSTROOM_RCPT_TO: m.rcptTo.join(','),
    POSTROOM_FROM: m.from ?? '',
    POSTROOM_SUBJECT: m.subject ?? '',
    POSTROOM_DATE: m.date ?? '',
    POSTROOM_RECEIVED_AT: m.receivedAt,
    POSTROOM_AUTH_USER: m.authUser ?? '',
    ...extra,
  };
}
