import { mailError } from '../core/errors.js';
import type { BlobStore } from '../store/ports.js';
import { getAccount, getProfile, listAccounts, type MailAccount } from '../domain/accounts/store.js';
import { getWorkPackage, listJournals } from '../domain/tracker/read.js';
import { tq } from '../domain/tracker/tables.js';
import { recordMailId, type WorkPackageRecord } from '../domain/tracker/work-packages.js';
import { bareAddress, compose, keepForSending, OutboundRequest } from '../outbound/compose.js';
import type { Db } from '../store/db.js';

/**
 * Notification mails about a work package, sent through a mail account (the outbound sender
 * takes them from the delivery queue). Each carries a Message-ID of ours that is recorded as
 * naming the work package, so a reply's In-Reply-To or References finds it again, whatever the
 * replier's client does to the subject.
 */

/** The subject of a notification: `[Project - Type #N] subject` (a reply's `[…#N]` names N too). */
export function notificationSubject(wp: WorkPackageRecord): string {
  return `[${wp.project.name} - ${wp.type} #${wp.id}] ${wp.subject}`;
}

function body(wp: WorkPackageRecord, journal: { user: string; notes: string; changes: { field: string; old: string | null; new: string | null }[] } | undefined): string {
  const facts = [
    `Project: ${wp.project.identifier}`,
    `Type: ${wp.type}`,
    `Status: ${wp.status}`,
    `Priority: ${wp.priority}`,
    `Assignee: ${wp.assignee?.login ?? '-'}`,
    `Done ratio: ${wp.doneRatio}%`,
    ...(wp.dueDate ? [`Due date: ${wp.dueDate}`] : []),
  ];
  const what = journal
    ? [
        `Updated by ${journal.user}:`,
        ...journal.changes.map((c) => `  ${c.field}: ${c.old ?? '-'} -> ${c.new ?? '-'}`),
        ...(journal.notes ? ['', journal.notes] : []),
      ]
    : [`Created by ${wp.author?.name ?? 'Anonymous'}:`, '', wp.description];
  return [
    `${wp.type} #${wp.id}: ${wp.subject}`,
    '',
    ...what,
    '',
    // Quoted in a reply, so these lines change nothing there.
    ...facts.map((f) => `| ${f}`),
    '',
    'Reply above this line to add a note; a line such as "Status: Closed" changes the status.',
    '',
  ].join('\n');
}

/** The mail account notifications go through, by id or name; CONFIG (transient) when it cannot send. */
export async function checkNotifyAccount(db: Db, accountRef: string): Promise<MailAccount & { address: string }> {
  const account = (await getAccount(db, accountRef)) ?? (await listAccounts(db)).find((a) => a.name === accountRef);
  if (!account) throw mailError('CONFIG', `notify.account: no mail account ${accountRef}`);
  const profile = await getProfile(db, account.profile);
  if (!profile?.smtp) throw mailError('CONFIG', `notify.account: the profile of ${account.name} has no SMTP server`);
  if (!account.address) throw mailError('CONFIG', `notify.account: ${account.name} has no address to send from`);
  return account as MailAccount & { address: string };
}

/**
 * Keep a notification about `wpId` (its creation, or the journal entry `journalId`) for
 * sending through `accountRef` (id or name) to the author, assignee and watchers, except
 * `skip` (whoever wrote the mail). Resolves with its Message-ID, or undefined when nobody is to
 * be told. Throws CONFIG when the account cannot send.
 */
export async function notifyWorkPackage(
  deps: { db: Db; blobs: BlobStore },
  accountRef: string,
  wpId: number,
  journalId: string | null,
  created: boolean,
  skip: string | null,
  inReplyTo: string | null,
): Promise<string | undefined> {
  const { db } = deps;
  const account = await checkNotifyAccount(db, accountRef);
  const q = tq(db.kysely);
  const wp = await getWorkPackage(q, wpId);
  if (!wp) return undefined;
  const j = created ? undefined : (await listJournals(q, wpId)).find((x) => x.id === journalId);
  const people = [wp.author, wp.assignee, ...wp.watchers].filter((p): p is NonNullable<typeof p> => !!p);
  const emails = await q.selectFrom('tracker_users').select('email').where('id', 'in', people.length ? people.map((p) => p.id) : ['']).execute();
  const to = [...new Set(emails.map((e) => e.email))].filter((e) => e !== skip?.toLowerCase());
  if (!to.length) return undefined;
  const req = OutboundRequest.parse({
    account: account.id,
    to,
    subject: notificationSubject(wp),
    text: body(wp, j && { user: j.user?.name ?? 'Anonymous', notes: j.notes, changes: j.changes }),
    ...(inReplyTo ? { inReplyTo, references: inReplyTo } : {}),
  });
  const hostname = bareAddress(account.address).split('@')[1] || 'postroom.invalid';
  const built = await compose(req, account.address, hostname);
  // Recorded first: a reply can only come after the notification left, and a notification
  // that failed to keep leaves an id nobody will ever answer.
  await recordMailId(q, built.messageId, wpId, 'notification');
  await keepForSending(deps, account.id, built);
  return built.messageId;
}
