import { setTimeout as sleep } from 'node:timers/promises';
import type { ParsedMessage } from '../core/delivery.js';
import { parseSearch } from '../core/message-search.js';
import { effectiveOptions } from '../domain/accounts/config.js';
import { getAccount, getFolder, getProfile } from '../domain/accounts/store.js';
import { transact, type Db } from '../store/db.js';
import { insertDeliveries } from '../store/deliveries.js';
import { listMessages } from '../store/messages.js';
import type { Logger } from '../telemetry/log.js';
import { bareAddress, outboundDelivery } from './compose.js';

/**
 * Sending that follows a folder (the email processor service's status-driven sending, by
 * folder): a message fetched from a folder whose options say `send_on_arrival` (true, or a
 * message search it matches) is switched from `received` to `sending` with its outbound
 * delivery, in one transaction, instead of being routed. From then on it is an account's
 * outbound message like one POSTed: `sent` or `error`, its delivery in `send`.
 *
 * The envelope is the message's own: From: (else the account's address) and every address of
 * To: and Cc:. A message with a Bcc: header is not sent (status `error`): sent as it is, the
 * header would show every blind copy's address to every recipient (RFC 5322 §3.6.3), and the
 * kept bytes are never rewritten.
 */
export function sendOnArrival(deps: { db: Db; log: Logger; wake(): void }) {
  return async (view: ParsedMessage): Promise<boolean> => {
    const m = view.message;
    if (m.ingress !== 'imap' && m.ingress !== 'pop3') return false;
    const { db } = deps;
    const find = () => db.kysely.selectFrom('mail_links').select(['account', 'folder']).where('message', '=', m.id).where('kind', '=', 'fetched').executeTakeFirst();
    // The fetcher links a message right after intake kept it; the parser may, rarely, be faster.
    const link = (await find()) ?? (await sleep(250).then(find));
    if (!link?.folder) return false;
    const folder = await getFolder(db, link.folder);
    const account = folder && (await getAccount(db, link.account));
    const profile = account && (await getProfile(db, account.profile));
    if (!folder || !account || !profile) return false;
    const rule = effectiveOptions(profile.options, account.options, folder.options).send_on_arrival;
    if (!rule) return false;
    if (typeof rule === 'string') {
      const hit = await listMessages(db.kysely, { id: m.id, search: parseSearch(rule), limit: 1 });
      if (!hit.length) return false;
    }
    const now = new Date().toISOString();
    const bcc = view.headers.some(([name]) => name.toLowerCase() === 'bcc');
    const rcptTo = [...new Set([...(view.addresses.to ?? []), ...(view.addresses.cc ?? [])].map((a) => a.address).filter(Boolean))];
    const from = view.addresses.from?.[0]?.address || (account.address ? bareAddress(account.address) : '');
    const refusal = bcc
      ? 'not sent: the message has a Bcc: header, which every recipient would see; send it without one'
      : !rcptTo.length
        ? 'not sent: no recipient in To: or Cc:'
        : !from
          ? 'not sent: no From: address, and the account has none'
          : undefined;
    const switched = await transact(db, async (trx) => {
      const set = refusal
        ? { status: 'error', error: refusal, updated_at: now }
        : { status: 'sending', mail_from: from, rcpt_to: JSON.stringify(rcptTo), updated_at: now };
      // Only from `received`: a second plan of the same message (a sweep after a crash) switches nothing.
      const res = await trx.updateTable('messages').set(set).where('id', '=', m.id).where('status', '=', 'received').executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return false;
      if (!refusal) await insertDeliveries(trx, [outboundDelivery(m.id, account.id, rcptTo, now)]);
      return true;
    });
    if (switched) {
      deps.log.info({ id: m.id, account: account.id, folder: folder.id, error: refusal }, refusal ? 'fetched message not sent' : 'fetched message sent on arrival');
      if (!refusal) deps.wake();
    }
    return true;
  };
}
