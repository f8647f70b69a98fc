import type { Db } from '../../src/store/db.js';
import {
  addMember,
  createCustomField,
  createEnum,
  createNamed,
  createProject,
  createUser,
  type ProjectRecord,
  type UserRecord,
} from '../../src/domain/tracker/setup.js';
import { tq } from '../../src/domain/tracker/tables.js';

/** The tracker the work-package tests share. */
export interface SeededTracker {
  users: Record<'alice' | 'bob' | 'carol' | 'dave', UserRecord>;
  projects: Record<'test' | 'other', ProjectRecord>;
}

/**
 * Users alice and bob (members of test_project; alice of other_project too), carol (a user,
 * member of nothing), dave (member of test_project); types Bug*, Feature, Support; statuses
 * New*, In Progress, Closed; priorities Normal*, High, Low (* default); categories Backend,
 * Frontend (test_project) and Docs (other_project); versions 1.0, 2.0 (test_project); custom
 * fields Customer ref (string), Effort (integer), Deadline (date), Severity (list).
 */
export async function seedTracker(db: Db): Promise<SeededTracker> {
  const alice = await createUser(db, { login: 'alice', email: 'Alice@Example.org', name: 'Alice Adams' });
  const bob = await createUser(db, { login: 'bob', email: 'bob@example.org', name: 'Bob Brown' });
  const carol = await createUser(db, { login: 'carol', email: 'carol@example.org', name: 'Carol Clark' });
  const dave = await createUser(db, { login: 'dave', email: 'dave@example.org', name: 'Dave Dunn' });
  const test = await createProject(db, { identifier: 'test_project', name: 'Test project' });
  const other = await createProject(db, { identifier: 'other_project', name: 'Other project' });
  const q = tq(db.kysely);
  for (const u of [alice, bob, dave]) await addMember(q, test.id, u.id);
  await addMember(q, other.id, alice.id);
  for (const [kind, names] of [
    ['type', ['Bug', 'Feature', 'Support']],
    ['status', ['New', 'In Progress', 'Closed']],
    ['priority', ['Normal', 'High', 'Low']],
  ] as const) {
    for (const [i, name] of names.entries()) await createEnum(db, kind, { name, isDefault: i === 0 });
  }
  for (const c of ['Backend', 'Frontend']) await createNamed(db, 'tracker_categories', test.id, c);
  await createNamed(db, 'tracker_categories', other.id, 'Docs');
  for (const v of ['1.0', '2.0']) await createNamed(db, 'tracker_versions', test.id, v);
  await createCustomField(db, { name: 'Customer ref', format: 'string' });
  await createCustomField(db, { name: 'Effort', format: 'integer' });
  await createCustomField(db, { name: 'Deadline', format: 'date' });
  await createCustomField(db, { name: 'Severity', format: 'list', possibleValues: ['minor', 'major', 'critical'] });
  return { users: { alice, bob, carol, dave }, projects: { test, other } };
}

/** A mail as RFC 5322 text (CRLF): headers, then a text body, an HTML-only body, or multipart with attachments. */
export function trackerMail(m: {
  from?: string;
  to?: string;
  cc?: string;
  subject: string;
  body?: string;
  html?: string;
  messageId?: string;
  headers?: string[];
  attachments?: { filename: string; contentType: string; data: Buffer }[];
}): string {
  const head = [
    `From: ${m.from ?? 'Alice Adams <alice@example.org>'}`,
    `To: ${m.to ?? 'support@tracker.test'}`,
    ...(m.cc ? [`Cc: ${m.cc}`] : []),
    `Subject: ${m.subject}`,
    'Date: Mon, 02 Mar 2026 10:00:00 +0000',
    `Message-ID: ${m.messageId ?? `<${Math.random().toString(36).slice(2)}@mail.test>`}`,
    ...(m.headers ?? []),
    'MIME-Version: 1.0',
  ];
  const crlf = (s: string) => s.replace(/\r?\n/g, '\r\n');
  if (m.html !== undefined) return [...head, 'Content-Type: text/html; charset=utf-8', '', crlf(m.html), ''].join('\r\n');
  if (!m.attachments?.length) return [...head, 'Content-Type: text/plain; charset=utf-8', '', crlf(m.body ?? ''), ''].join('\r\n');
  const parts = [
    '--sep',
    'Content-Type: text/plain; charset=utf-8',
    '',
    crlf(m.body ?? ''),
    ...m.attachments.flatMap((a) => [
      '--sep',
      `Content-Type: ${a.contentType}; name="${a.filename}"`,
      `Content-Disposition: attachment; filename="${a.filename}"`,
      'Content-Transfer-Encoding: base64',
      '',
      (a.data.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n'),
    ]),
    '--sep--',
    '',
  ];
  return [...head, 'Content-Type: multipart/mixed; boundary="sep"', '', ...parts].join('\r\n');
}
