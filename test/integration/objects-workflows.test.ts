import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { text } from 'node:stream/consumers';
import type { Target } from '../../src/core/delivery.js';
import { MailError } from '../../src/core/errors.js';
import { buildParsedView } from '../../src/mime/parsed-view.js';
import { grant, NETWORK } from '../../src/domain/acl.js';
import { DEFAULT_HEADER_PROPERTIES } from '../../src/domain/folders/collect.js';
import { requireDocument } from '../../src/domain/folders/documents.js';
import { workflowDefinition, type WorkflowDefinitionInput } from '../../src/domain/workflows/definition.js';
import { createWorkflow, getProcess, listProcesses } from '../../src/domain/workflows/store.js';
import { createWorkflowTarget, workflowParams, type WorkflowParams } from '../../src/targets/workflow.js';
import { deliveryRig, type DeliveryRig } from '../helpers/delivery.js';
import { deliveryCtx, PDF, scanMessage } from '../helpers/objects.js';

describe('workflows and processes', () => {
  let rig: DeliveryRig;
  let target: Target<WorkflowParams>;
  const params = workflowParams.parse({});
  before(async () => {
    rig = await deliveryRig();
    target = createWorkflowTarget({ db: rig.db, blobs: rig.blobs, headers: DEFAULT_HEADER_PROPERTIES });
  });
  after(() => rig.cleanup());

  let n = 0;
  async function workflow(def: Omit<WorkflowDefinitionInput, 'name'>, acl = 'r') {
    const w = await createWorkflow(rig.db, workflowDefinition.parse({ name: `wf-${++n}`, ...def }));
    if (acl) await grant(rig.db.kysely, w.id, NETWORK, acl);
    return w;
  }

  async function start(name: string, raw = scanMessage(), deliveryId?: string) {
    const m = await rig.keep(raw);
    const view = await buildParsedView(rig, m.id);
    const ctx = deliveryCtx({ captures: { route: name }, ...(deliveryId ? { deliveryId } : {}) });
    try {
      return { receipt: await target.deliver(view, params, ctx), ctx };
    } catch (err) {
      return { error: err as MailError, ctx };
    }
  }

  async function outputOf(processId: number): Promise<string> {
    const p = (await getProcess(rig.db.kysely, processId))!;
    return text(await rig.blobs.open((await requireDocument(rig.db.kysely, p.output!)).sha256));
  }

  it('runs a command with the text body on stdin: wc -w counts the words', async () => {
    const w = await workflow({ action: { command: ['wc', '-w'] } });
    const { receipt } = await start(w.name, scanMessage({ body: 'alpha beta gamma delta' }));
    const p = (await getProcess(rig.db.kysely, receipt!.process as number))!;
    assert.equal(p.state, 'completed');
    assert.equal(p.exitCode, 0);
    assert.equal(p.attempts, 1);
    assert.equal((await outputOf(p.id)).trim(), '4');
  });

  it('never runs a shell: metacharacters in argv and mail are plain bytes', async () => {
    const w = await workflow({ action: { command: ['printf', '%s|%s', '$(id)', '; echo pwned'] } });
    const { receipt } = await start(w.name);
    assert.equal(await outputOf(receipt!.process as number), '$(id)|; echo pwned');
  });

  it('passes message metadata in POSTROOM_* variables and nothing of our own environment', async () => {
    process.env.POSTROOM_SECRET_FOR_TEST = 'must-not-leak';
    const w = await workflow({ action: { command: ['sh', '-c', 'echo "$POSTROOM_SUBJECT|$POSTROOM_WORKFLOW|$POSTROOM_SECRET_FOR_TEST|$EXTRA"'], env: { EXTRA: 'x' } } });
    const { receipt } = await start(w.name, scanMessage({ subject: 'Status $(reboot)' }));
    delete process.env.POSTROOM_SECRET_FOR_TEST;
    assert.equal((await outputOf(receipt!.process as number)).trim(), `Status $(reboot)|${w.name}||x`);
  });

  it('takes the first attachment of a named type as input', async () => {
    const w = await workflow({ input: { type: 'application/pdf' }, action: { command: ['wc', '-c'] } });
    const { receipt } = await start(w.name);
    assert.equal((await outputOf(receipt!.process as number)).trim(), String(PDF.length));
    const png = await workflow({ input: { type: 'application/zip' }, action: { command: ['wc', '-c'] } });
    const { error } = await start(png.name);
    assert.equal(error?.status, '5.6.0');
  });

  it('treats exit 75 and timeouts as transient, runs the same process again, other exits as permanent', async () => {
    const flag = `/tmp/postroom-wf-${process.pid}-${Date.now()}`;
    // Fails with EX_TEMPFAIL the first time, succeeds the second.
    const w = await workflow({ action: { command: ['sh', '-c', `if [ -e ${flag} ]; then rm ${flag}; echo ok; else touch ${flag}; exit 75; fi`] } });
    const first = await start(w.name, scanMessage(), 'retry-1');
    assert.equal(first.error?.transient, true);
    const [failed] = await listProcesses(rig.db.kysely, { workflow: w.id, limit: 5 });
    assert.equal(failed.state, 'failed');
    assert.equal(failed.disposition, 'transient');
    assert.equal(failed.exitCode, 75);
    const m = (await rig.db.kysely.selectFrom('messages').select('id').orderBy('id', 'desc').executeTakeFirstOrThrow()).id;
    const again = await target.deliver(await buildParsedView(rig, m), params, first.ctx);
    assert.equal(again.process, failed.id, 'the retry is the same process');
    const done = (await getProcess(rig.db.kysely, failed.id))!;
    assert.equal(done.state, 'completed');
    assert.equal(done.attempts, 2);

    const slow = await workflow({ action: { command: ['sleep', '5'], timeout: '200ms' } });
    const t = await start(slow.name);
    assert.equal(t.error?.transient, true);
    assert.match(t.error!.message, /killed after 200 ms/);

    const bad = await workflow({ action: { command: ['sh', '-c', 'echo broken >&2; exit 3'] } });
    const b = await start(bad.name);
    assert.equal(b.error?.transient, false);
    assert.match(b.error!.message, /exited 3: broken/);
    const [p] = await listProcesses(rig.db.kysely, { workflow: bad.id, limit: 1 });
    assert.deepEqual([p.state, p.disposition, p.exitCode], ['failed', 'permanent', 3]);
  });

  it('keeps at most maxOutput bytes of stdout', async () => {
    const w = await workflow({ action: { command: ['head', '-c', '100000', '/dev/zero'], maxOutput: 1000 } });
    const { receipt } = await start(w.name);
    const p = (await getProcess(rig.db.kysely, receipt!.process as number))!;
    assert.equal((await requireDocument(rig.db.kysely, p.output!)).size, 1000);
    assert.match(p.status!, /output cut/);
  });

  it('POSTs the input to a URL and keeps the response body as output', async () => {
    const got: { body: string; headers: http.IncomingHttpHeaders }[] = [];
    const srv = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        got.push({ body, headers: req.headers });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"words":5}');
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/run`;
      const refused = await workflow({ action: { url } });
      assert.equal((await start(refused.name)).error?.status, '5.7.1', 'loopback refused without allowPrivate');
      const w = await workflow({ action: { url, allowPrivate: true } });
      const { receipt } = await start(w.name, scanMessage({ body: 'one two three four five' }));
      assert.equal(await outputOf(receipt!.process as number), '{"words":5}');
      assert.equal(got[0].body.trim(), 'one two three four five');
      assert.equal(got[0].headers['x-postroom-workflow'], w.name);
    } finally {
      srv.close();
    }
  });

  it('refuses RCPT for an unknown workflow (5.1.1) and without read (5.7.1)', async () => {
    const check = (name: string, authUser?: string) => target.check!(`ogo+wf+${name}@example.org`, params, { captures: { route: name }, authUser });
    await assert.rejects(check('no-such-workflow'), (e: MailError) => e.status === '5.1.1' && e.smtpCode === 550);
    const w = await workflow({ action: { command: ['true'] } }, '');
    await assert.rejects(check(w.name), (e: MailError) => e.status === '5.7.1');
    await grant(rig.db.kysely, w.id, NETWORK, 'r');
    await check(w.name);
    await check(w.name.toUpperCase());
  });
});
