import { Readable } from 'node:stream';
import { newId } from '../core/ids.js';
import type { BlobStore } from '../core/ports.js';
import type { Db } from '../store/db.js';
import { insertMessages, newMessageRow } from '../store/messages.js';
import { HeaderSniffer } from '../mime/header-sniff.js';

/**
 * Keeps a message we generated (a DSN) as an outbound message: raw bytes fsynced into the blob
 * store, a row with ingress `dsn` and status `sending`, for the outbound sender to pass on. It
 * goes through the store rather than straight to a relay so it survives a restart, and because
 * the relay that just refused the original is a poor bet for carrying the bounce.
 * Such rows are never routed: routing takes only mail that arrived (status `received`).
 */
export function keepOutbound(deps: { db: Db; blobs: BlobStore }) {
  return async (envelope: { mailFrom: string; rcptTo: string[] }, raw: Uint8Array): Promise<string> => {
    const { db, blobs } = deps;
    const sniffer = new HeaderSniffer();
    sniffer.push(raw);
    const head = sniffer.result();
    const staged = await blobs.stage(Readable.from([Buffer.from(raw)]));
    const id = newId();
    const row = {
      ...newMessageRow(
        id,
        { mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, ingress: 'dsn', receivedAt: new Date() },
        staged,
        head,
        null,
      ),
      status: 'sending',
    };
    try {
      const [kept] = await db.kysely.transaction().execute(async (trx) => {
        await blobs.commit([staged], trx);
        return insertMessages(trx, [row]);
      });
      return kept.id;
    } catch (err) {
      await blobs.discard(staged);
      throw err;
    }
  };
}
