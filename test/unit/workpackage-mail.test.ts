import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MailError } from '../../src/core/errors.js';
import { buildParsedView } from '../../src/mime/parsed-view.js';
import { getWorkPackage, listAttachments, listJournals } from '../../src/domain/tracker/read.js';
import { tq } from '../../src/domain/tracker/tables.js';
import { recordMailId, type Change } from '../../src/domain/tracker/work-packages.js';
import { createWorkpackageTarget, workpackageParams } from '../../src/targets/workpackage.js';
import { deliveryRig, type DeliveryRig } from '../helpers/delivery.js';
import { deliveryCtx, PDF } from '../helpers/objects.js';
import { seedTracker, trackerMail } from '../helpers/tracker.js';

/** What a case says about the work package afterwards (only the keys given are compared). */
interface Expect {
  subject?: string;
  description?: string;
  project?: string;
  type?: string;
  status?: string;
  priority?: string;
  author?: string | null;
  assignee?: string | null;
  category?: string | null;
  version?: string | null;
  startDate?: string | null;
  dueDate?: string | null;
  doneRatio?: number;
  customValues?: Record<string, string>;
  watchers?: string[];
  attachments?: string[];
}

interface Refs {
  wp(name: string): number;
  messageId(name: string): string;
}

interface Case {
  name: string;
  /** Route params; default { project: test_project }. */
  params?: Record<string, unknown>;
  mail(refs: Refs): Parameters<typeof trackerMail>[0];
  rcptTo?: string[];
  /** The case whose work package this mail must update. */
  updates?: string;
  expect?: Expect;
  /** The journal entry this mail made: its notes (exact string, or a pattern) and changes. */
  journal?: { notes?: string | RegExp; changes?: Change[] };
  error?: { code: string; status: string; text: RegExp };
}

const bug = (body: string, extra: Partial<Parameters<typeof trackerMail>[0]> = {}) => () => ({ subject: 'Printer on fire', body, ...extra });

const CASES: Case[] = [
  {
    name: 'a plain mail becomes a work package with the defaults',
    mail: bug('It is on fire.\nPlease come.'),
    expect: { subject: 'Printer on fire', description: 'It is on fire.\nPlease come.', project: 'test_project', type: 'Bug', status: 'New', priority: 'Normal', author: 'alice', assignee: null, doneRatio: 0 },
    journal: { notes: '', changes: [] },
  },
  {
    name: 'keys in any case set attributes; the lines leave the description',
    mail: bug('TYPE: Feature\nstatus: In Progress\nPrIoRiTy: High\ncategory : Backend\nVersion: 2.0\n\nPlease add a fire extinguisher.'),
    expect: { type: 'Feature', status: 'In Progress', priority: 'High', category: 'Backend', version: '2.0', description: 'Please add a fire extinguisher.' },
  },
  {
    name: 'values are case-sensitive: an unknown value is ignored and noted in the journal',
    mail: bug('Type: feature\nCategory: backend\n\nLower case.'),
    expect: { type: 'Bug', category: null, description: 'Lower case.' },
    journal: { notes: "Ignored in the mail:\n- Type: 'feature' is not a type\n- Category: 'backend' is not a category of project test_project" },
  },
  { name: 'assignee by mail address, in any case', mail: bug('Assignee: BOB@example.org\n\nFor Bob.'), expect: { assignee: 'bob' } },
  { name: 'assignee by login', mail: bug('Assigned to: dave\n\nFor Dave.'), expect: { assignee: 'dave', description: 'For Dave.' } },
  {
    name: 'an assignee who is not a member of the project is ignored',
    mail: bug('Assignee: carol\n\nFor Carol.'),
    expect: { assignee: null },
    journal: { notes: /carol is not a member of project test_project/ },
  },
  { name: 'ISO dates', mail: bug('Start date: 2026-03-02\nDue date: 2026-03-31\n\nSoon.'), expect: { startDate: '2026-03-02', dueDate: '2026-03-31' } },
  { name: 'dotted and written-out dates', mail: bug('Start date: 2.3.2026\nDue date: March 31, 2026\n\nSoon.'), expect: { startDate: '2026-03-02', dueDate: '2026-03-31' } },
  {
    name: 'day-month-year words; a slashed date is ambiguous and ignored',
    mail: bug('Start date: 31 Mar 2026\nDue date: 03/04/2026\n\nSoon.'),
    expect: { startDate: '2026-03-31', dueDate: null },
    journal: { notes: /Due date: '03\/04\/2026' is ambiguous/ },
  },
  { name: 'a date that does not exist is ignored', mail: bug('Due date: 2026-02-30\n\nSoon.'), expect: { dueDate: null }, journal: { notes: /'2026-02-30' is not a date/ } },
  {
    name: 'a due date before the start date is ignored',
    mail: bug('Start date: 2026-04-01\nDue date: 2026-03-01\n\nBackwards.'),
    expect: { startDate: '2026-04-01', dueDate: null },
    journal: { notes: /Due date: 2026-03-01 is before the start date 2026-04-01/ },
  },
  { name: 'done ratio with a percent sign', mail: bug('Done ratio: 40%\n\nHalf way.'), expect: { doneRatio: 40 } },
  { name: 'a done ratio over 100 is ignored', mail: bug('% Done: 150\n\nOver.'), expect: { doneRatio: 0 }, journal: { notes: /'150' is not a percentage/ } },
  {
    name: 'custom fields by displayed name (string, integer, date, list)',
    mail: bug('customer REF: ACME-42\nEffort: 8\nDeadline: 1 May 2026\nSeverity: major\n\nCustom.'),
    expect: { customValues: { 'Customer ref': 'ACME-42', Effort: '8', Deadline: '2026-05-01', Severity: 'major' }, description: 'Custom.' },
  },
  {
    name: 'custom values that do not fit their field are ignored',
    mail: bug('Effort: eight\nSeverity: Major\n\nBad custom.'),
    expect: { customValues: {} },
    journal: { notes: "Ignored in the mail:\n- Effort: 'eight' is not a whole number\n- Severity: 'Major' is not one of minor, major, critical" },
  },
  {
    name: 'a default the route does not let the mail override stays',
    params: { project: 'test_project', type: 'Support', status: 'New' },
    mail: bug('Type: Feature\nStatus: Closed\nPriority: High\n\nFixed fields.'),
    expect: { type: 'Support', status: 'New', priority: 'High', description: 'Fixed fields.' },
    journal: { notes: /Type: 'Feature' ignored: this route fixes the type\n- Status: 'Closed' ignored: this route fixes the status/ },
  },
  {
    name: 'allow_override (comma list, tracker = type) lets the mail change defaults',
    params: { project: 'test_project', type: 'Support', status: 'New', allow_override: 'tracker, status' },
    mail: bug('Type: Feature\nStatus: Closed\n\nOverridden.'),
    expect: { type: 'Feature', status: 'Closed' },
  },
  {
    name: 'Project: from the mail is ignored without allow_override: project',
    mail: bug('Project: other_project\n\nWrong place.'),
    expect: { project: 'test_project', description: 'Wrong place.' },
    journal: { notes: /Project: 'other_project' ignored: this route fixes the project/ },
  },
  {
    name: 'Project: from the mail with allow_override: project (categories looked up there)',
    params: { project: 'test_project', allow_override: ['project'] },
    mail: bug('Project: other_project\nCategory: Docs\n\nRight place.'),
    expect: { project: 'other_project', category: 'Docs' },
  },
  {
    name: 'no project default: the mail names it (allow_override: project)',
    params: { allow_override: 'project' },
    mail: bug('project: other_project\n\nNo default.'),
    expect: { project: 'other_project' },
  },
  {
    name: 'no project default and none allowed from the mail: permanent failure',
    params: {},
    mail: bug('Project: other_project\n\nNowhere.'),
    error: { code: 'BAD_CONTENT', status: '5.6.0', text: /No project/ },
  },
  {
    name: 'truncation: nothing after a delimiter line counts, keys included',
    params: { project: 'test_project', truncate: ['--Truncate here--', '--- Reply above ---'] },
    mail: bug('Do it.\nStatus: In Progress\n--Truncate here--\nPriority: High\nOld stuff.'),
    expect: { description: 'Do it.', status: 'In Progress', priority: 'Normal' },
  },
  {
    name: 'an unknown sender is refused for good',
    mail: bug('Spam.', { from: 'Mallory <mallory@evil.test>' }),
    error: { code: 'REJECTED', status: '5.7.1', text: /Unknown sender <mallory@evil\.test>/ },
  },
  {
    name: 'an unknown sender with no_permission_check: anonymous author',
    params: { project: 'test_project', no_permission_check: true },
    mail: bug('Hello from outside.', { from: 'Customer <customer@outside.test>' }),
    expect: { author: null, description: 'Hello from outside.' },
  },
  {
    name: 'a known sender who is not a member is refused',
    mail: bug('Let me in.', { from: 'carol@example.org' }),
    error: { code: 'NOT_AUTHORISED', status: '5.7.1', text: /carol is not a member of project test_project/ },
  },
  {
    name: 'a known non-member with no_permission_check is the author',
    params: { project: 'test_project', no_permission_check: true },
    mail: bug('Let me in.', { from: 'carol@example.org' }),
    expect: { author: 'carol' },
  },
  {
    name: 'users among To, Cc and envelope recipients watch it (not the author)',
    mail: bug('Watch this.', { to: 'support@tracker.test, Bob <bob@example.org>', cc: 'Dave <DAVE@example.org>, alice@example.org, nobody@example.org' }),
    rcptTo: ['support@tracker.test', 'carol@example.org'],
    expect: { watchers: ['bob', 'carol', 'dave'] },
  },
  {
    name: 'HTML-only mail is read as text',
    mail: () => ({ subject: 'HTML only', html: '<html><body><p>Status: In Progress</p><p>The <b>screen</b> is blank.</p></body></html>' }),
    expect: { status: 'In Progress', description: 'The screen is blank.' },
  },
  {
    name: 'attachments are attached under sanitised names',
    mail: bug('See attached.', {
      attachments: [
        { filename: 'report.pdf', contentType: 'application/pdf', data: PDF },
        { filename: '../../etc/passwd', contentType: 'text/plain', data: Buffer.from('root:x:0:0') },
      ],
    }),
    expect: { attachments: ['report.pdf', 'passwd'], description: 'See attached.' },
  },
  {
    name: 'reply by [#N] in the subject: quoted text dropped, keys change attributes, the rest is a note',
    updates: 'a plain mail becomes a work package with the defaults',
    mail: (r) => ({
      from: 'Bob <bob@example.org>',
      subject: `Re: [#${r.wp('a plain mail becomes a work package with the defaults')}] Printer on fire`,
      body: 'Status: Closed\nDone ratio: 100\n\nFixed it.\n\nOn Mon, 2 Mar 2026 at 10:00, Alice Adams <alice@example.org>\nwrote:\n> It is on fire.\n> Status: New\n',
    }),
    expect: { status: 'Closed', doneRatio: 100, author: 'alice', description: 'It is on fire.\nPlease come.' },
    journal: {
      notes: 'Fixed it.',
      changes: [
        { field: 'status', old: 'New', new: 'Closed' },
        { field: 'doneRatio', old: '0', new: '100' },
      ],
    },
  },
  {
    name: 'reply by In-Reply-To to the mail that made it; Outlook quoting without >',
    updates: 'keys in any case set attributes; the lines leave the description',
    mail: (r) => ({
      subject: 'RE: Printer on fire',
      headers: [`In-Reply-To: ${r.messageId('keys in any case set attributes; the lines leave the description')}`],
      body: 'Priority: Low\nThanks, lowering it.\n\n-----Original Message-----\nFrom: Tracker <tracker@example.org>\nSent: Monday, March 2, 2026 10:00 AM\nTo: Alice Adams\nSubject: [#1] Printer on fire\n\nStatus: Closed\nOld text.',
    }),
    expect: { priority: 'Low', status: 'In Progress' },
    journal: { notes: 'Thanks, lowering it.', changes: [{ field: 'priority', old: 'High', new: 'Low' }] },
  },
  {
    name: 'reply by References to the mail that made it; Outlook header block, signature cut',
    updates: 'assignee by login',
    mail: (r) => ({
      subject: 'RE: Printer on fire',
      headers: [`References: <unrelated@mail.test> ${r.messageId('assignee by login')}`],
      body: 'Assignee: bob\nTaking it over.\n-- \nAlice Adams\nStatus: Closed\n\nFrom: Tracker <tracker@example.org>\nSent: Monday, March 2, 2026 10:00 AM\nTo: Alice\nSubject: Printer on fire\n\nStatus: Closed',
    }),
    expect: { assignee: 'bob', status: 'New' },
    journal: { notes: 'Taking it over.', changes: [{ field: 'assignee', old: 'dave', new: 'bob' }] },
  },
  {
    name: 'a reply adds its attachments and keeps the defaults it may not override',
    params: { project: 'test_project', status: 'New' },
    updates: 'ISO dates',
    mail: (r) => ({
      subject: `Re: [Test project - Bug #${r.wp('ISO dates')}] Printer on fire`,
      body: 'Status: Closed\nHere is the log.',
      attachments: [{ filename: 'log.txt', contentType: 'text/plain', data: Buffer.from('line 1\nline 2\n') }],
    }),
    expect: { status: 'New', attachments: ['log.txt'] },
    journal: { notes: /^Here is the log\.\n\nIgnored in the mail:\n- Status: 'Closed' ignored: this route fixes the status$/, changes: [] },
  },
  {
    name: 'a reply naming a work package that does not exist fails for good',
    mail: () => ({ subject: 'Re: [#999999999] Gone', body: 'Hello?' }),
    error: { code: 'NOT_FOUND', status: '5.1.1', text: /No work package #999999999/ },
  },
  {
    name: 'a reply from an unknown sender is refused',
    mail: (r) => ({ from: 'mallory@evil.test', subject: `Re: [#${r.wp('ISO dates')}] x`, body: 'Status: Closed' }),
    error: { code: 'REJECTED', status: '5.7.1', text: /Unknown sender/ },
  },
];

describe('workpackage target: mails ⇒ work packages', () => {
  let rig: DeliveryRig;
  const made = new Map<string, { wp: number; messageId: string }>();
  const refs: Refs = {
    wp: (n) => made.get(n)?.wp ?? assert.fail(`no work package from case '${n}'`),
    messageId: (n) => made.get(n)?.messageId ?? assert.fail(`no Message-ID from case '${n}'`),
  };

  before(async () => {
    rig = await deliveryRig();
    await seedTracker(rig.db);
  });
  after(() => rig.cleanup());

  it('has at least 25 mails in its table', () => assert.ok(CASES.length >= 25));

  for (const c of CASES) {
    it(c.name, async () => {
      const spec = c.mail(refs);
      const messageId = spec.messageId ?? `<case-${made.size}-${Date.now()}@mail.test>`;
      const stored = await rig.keep(trackerMail({ ...spec, messageId }), { rcptTo: c.rcptTo ?? ['support@tracker.test'] });
      const view = await buildParsedView({ db: rig.db, blobs: rig.blobs }, stored.id);
      const target = createWorkpackageTarget({ db: rig.db, blobs: rig.blobs, headers: [] });
      const params = workpackageParams.parse(c.params ?? { project: 'test_project' });
      const ctx = deliveryCtx({ route: 'tracker', recipients: c.rcptTo ?? ['support@tracker.test'] });
      if (c.error) {
        await assert.rejects(target.deliver(view, params, ctx), (err: unknown) => {
          assert.ok(err instanceof MailError);
          assert.equal(err.code, c.error!.code);
          assert.equal(err.status, c.error!.status);
          assert.equal(err.disposition, 'permanent');
          assert.match(err.message, c.error!.text);
          return true;
        });
        return;
      }
      const receipt = await target.deliver(view, params, ctx);
      const id = receipt.workPackage as number;
      if (c.updates) {
        assert.equal(id, refs.wp(c.updates), 'the reply updates the work package it answers');
        assert.equal(receipt.created, false);
      } else {
        assert.equal(receipt.created, true);
        made.set(c.name, { wp: id, messageId });
      }
      const q = tq(rig.db.kysely);
      const wp = (await getWorkPackage(q, id))!;
      const shown: Record<string, unknown> = {
        ...wp,
        project: wp.project.identifier,
        author: wp.author?.login ?? null,
        assignee: wp.assignee?.login ?? null,
        watchers: wp.watchers.map((w) => w.login),
        attachments: (await listAttachments(q, id)).map((a) => a.filename),
      };
      const want = c.expect ?? {};
      assert.deepEqual(Object.fromEntries(Object.keys(want).map((k) => [k, shown[k]])), want);
      const journals = await listJournals(q, id);
      const last = journals[journals.length - 1];
      assert.equal(last.message, stored.id);
      if (c.journal?.notes !== undefined) {
        if (typeof c.journal.notes === 'string') assert.equal(last.notes, c.journal.notes);
        else assert.match(last.notes, c.journal.notes);
      }
      if (c.journal?.changes) assert.deepEqual(last.changes, c.journal.changes);
    });
  }

  it('a retried delivery changes nothing twice', async () => {
    const stored = await rig.keep(trackerMail({ subject: 'Once', body: 'Only once.' }));
    const view = await buildParsedView({ db: rig.db, blobs: rig.blobs }, stored.id);
    const target = createWorkpackageTarget({ db: rig.db, blobs: rig.blobs, headers: [] });
    const params = workpackageParams.parse({ project: 'test_project' });
    const ctx = deliveryCtx({ route: 'tracker' });
    const first = await target.deliver(view, params, ctx);
    const again = await target.deliver(view, params, { ...ctx, attempt: 2 });
    assert.equal(again.workPackage, first.workPackage);
    const count = await tq(rig.db.kysely).selectFrom('tracker_work_packages').select('id').where('message', '=', stored.id).execute();
    assert.equal(count.length, 1);
  });

  it('our notification Message-ID maps a reply back to its work package', async () => {
    const q = tq(rig.db.kysely);
    const wp = refs.wp('ISO dates');
    await recordMailId(q, '<wp-notification-1@postroom.test>', wp, 'notification');
    const stored = await rig.keep(
      trackerMail({ subject: 'Re: your ticket', headers: ['In-Reply-To: <wp-notification-1@postroom.test>'], body: 'Done ratio: 70\n\n> quoted\n' }),
    );
    const view = await buildParsedView({ db: rig.db, blobs: rig.blobs }, stored.id);
    const r = await createWorkpackageTarget({ db: rig.db, blobs: rig.blobs, headers: [] }).deliver(view, workpackageParams.parse({ project: 'test_project' }), deliveryCtx());
    assert.equal(r.workPackage, wp);
    assert.equal((await getWorkPackage(q, wp))!.doneRatio, 70);
  });

  it('bad route params are config errors naming the key', () => {
    const r = workpackageParams.safeParse({ project: 'p', allow_override: 'type,colour', no_permission_check: 'yes' });
    assert.equal(r.success, false);
    const paths = r.error!.issues.map((i) => i.path.join('.'));
    assert.ok(paths.includes('allow_override'), paths.join(','));
    assert.ok(paths.includes('no_permission_check'), paths.join(','));
    assert.equal(workpackageParams.safeParse({ projekt: 'p' }).success, false);
  });
});
