import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { text } from 'node:stream/consumers';
import { grant, NETWORK } from '../../src/domain/acl.js';
import { requireDocument } from '../../src/domain/folders/documents.js';
import { workflowDefinition } from '../../src/domain/workflows/definition.js';
import { createWorkflow, listProcesses } from '../../src/domain/workflows/store.js';
import { requirePeer, waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { swaks } from '../helpers/swaks.js';

/** Workflows started by mail, end to end: swaks → SMTP → keep → parse → route → process. */
describe('workflows over SMTP, with swaks', () => {
  let pr: TestPostroom;
  before(async () => {
    pr = await startTestPostroom({
      objects: { prefix: 'ogo', domain: 'example.org', retry: { schedule: ['100ms'], jitter: 0 } },
      delivery: { pollInterval: '50ms' },
    });
  });
  after(() => pr.close());

  test('ogo+wf+count@ with a workflow running wc -w: a completed process whose output is the word count', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const w = await createWorkflow(pr.db, workflowDefinition.parse({ name: 'count', action: { command: ['wc', '-w'] } }));
    await grant(pr.db.kysely, w.id, NETWORK, 'r');
    const body = 'The lamp room reports seven lamps lit and two dark tonight';
    const run = await swaks(pr.smtpPort, ['--from', 'keeper@example.org', '--to', 'ogo+wf+count@example.org', '--header', 'Subject: status', '--body', body]);
    assert.equal(run.code, 0, run.out);
    const p = await waitFor(async () => {
      const [p] = await listProcesses(pr.db.kysely, { workflow: w.id, limit: 1 });
      return p?.state === 'completed' ? p : undefined;
    }, 'a completed process');
    assert.equal(p.exitCode, 0);
    const out = await text(await pr.blobs.open((await requireDocument(pr.db.kysely, p.output!)).sha256));
    assert.equal(Number(out.trim()), body.split(/\s+/).length);
  });

  test('exit 75 is retried by the route schedule until the command succeeds', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const flag = `/tmp/postroom-swaks-wf-${process.pid}`;
    const w = await createWorkflow(
      pr.db,
      workflowDefinition.parse({ name: 'flaky', action: { command: ['sh', '-c', `if [ -e ${flag} ]; then rm ${flag}; echo done; else touch ${flag}; exit 75; fi`] } }),
    );
    await grant(pr.db.kysely, w.id, NETWORK, 'r');
    const run = await swaks(pr.smtpPort, ['--from', 'keeper@example.org', '--to', 'ogo+wf+flaky@example.org', '--body', 'x']);
    assert.equal(run.code, 0, run.out);
    const p = await waitFor(async () => {
      const [p] = await listProcesses(pr.db.kysely, { workflow: w.id, limit: 1 });
      return p?.state === 'completed' ? p : undefined;
    }, 'the process completed on its retry');
    assert.equal(p.attempts, 2);
  });

  test('an unknown workflow is 550 5.1.1, one without a read grant 550 5.7.1, both at RCPT', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    await createWorkflow(pr.db, workflowDefinition.parse({ name: 'private', action: { command: ['true'] } }));
    const unknown = await swaks(pr.smtpPort, ['--from', 'a@example.org', '--to', 'ogo+wf+nosuch@example.org', '--quit-after', 'RCPT']);
    assert.ok(unknown.replies.some((r) => /^550 5\.1\.1 /.test(r)), unknown.replies.join('\n'));
    const denied = await swaks(pr.smtpPort, ['--from', 'a@example.org', '--to', 'ogo+wf+private@example.org', '--quit-after', 'RCPT']);
    assert.ok(denied.replies.some((r) => /^550 5\.7\.1 /.test(r)), denied.replies.join('\n'));
  });
});
