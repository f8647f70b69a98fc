import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { PlannedDelivery } from '../../src/core/delivery.js';
import { createRouter } from '../../src/routing/router.js';
import { makeRoutesSchema } from '../../src/routing/schema.js';
import { deliveryId } from '../../src/store/deliveries.js';
import { targets } from '../../src/targets/index.js';
import { fakeParsed } from '../helpers/parsed.js';

// Every target kind on a route that takes several recipients, as an operator writes them.
const routes = makeRoutesSchema(targets).parse([
  { name: 'folders', match: { recipient: 'ogo+{objectId}@example.org' }, deliver: [{ folder: {} }] },
  { name: 'docs', match: { recipient: 'docs+{objectId}@example.org' }, deliver: [{ folder: { folder: '<%objectId%>' } }] },
  { name: 'workflows', priority: 10, match: { recipient: 'wf+{route}@example.org' }, deliver: [{ workflow: {} }] },
  { name: 'workflow-ids', match: { recipient: 'run+{objectId}@example.org' }, deliver: [{ workflow: {} }] },
  { name: 'fax', match: { recipient: '/^(?<number>\\d+)@fax$/' }, deliver: [{ spool: { dir: '/tmp/never-written' } }] },
  { name: 'lists', match: { recipient: '/@lists\\.example\\.org$/' }, deliver: [{ group: {} }] },
  { name: 'tracker', match: { recipient: '{project}@tracker.example.org' }, deliver: [{ workpackage: { project: '<%project%>' } }] },
  { name: 'hook', match: { recipient: 'hook+{tag}@example.org' }, deliver: [{ webhook: { url: 'https://hook.example/in' } }] },
  { name: 'relay', match: { recipient: 'relay+{tag}@example.org' }, deliver: [{ forward: { host: 'mx.example', port: 25 } }] },
]);
const router = createRouter(routes, targets);
const plan = (rcptTo: string[]) => router.plan(fakeParsed({ rcptTo }));
const show = (p: PlannedDelivery[]) => p.map((d) => `${d.route} ${d.recipients.join(',')} ${JSON.stringify(d.captures)}`);

describe('several recipients on one route: each gets what it would get alone', () => {
  it('three folders in one transaction are three deliveries, each with its own objectId', async () => {
    const p = await plan(['ogo+1@example.org', 'ogo+2@example.org', 'ogo+3@example.org']);
    assert.deepEqual(show(p), [
      'folders ogo+1@example.org {"objectId":"1"}',
      'folders ogo+2@example.org {"objectId":"2"}',
      'folders ogo+3@example.org {"objectId":"3"}',
    ]);
    assert.equal(new Set(p.map((d) => deliveryId('m', d.route, d.targetIndex, d.destination))).size, 3);
  });

  it('one folder under two addresses is one delivery for both', async () => {
    const p = await plan(['ogo+7@example.org', 'ogo+007@example.org']);
    assert.deepEqual(show(p), ['folders ogo+7@example.org,ogo+007@example.org {"objectId":"7"}']);
    assert.deepEqual(p[0].recipientCaptures, { 'ogo+7@example.org': { objectId: '7' }, 'ogo+007@example.org': { objectId: '007' } });
  });

  it('two fax numbers are two spool pairs', async () => {
    assert.deepEqual(show(await plan(['111@fax', '222@fax'])), ['fax 111@fax {"number":"111"}', 'fax 222@fax {"number":"222"}']);
  });

  it('two groups get a post each; a list and its +tag address are one post', async () => {
    assert.deepEqual(show(await plan(['dev@lists.example.org', 'ops@lists.example.org'])), [
      'lists dev@lists.example.org {}',
      'lists ops@lists.example.org {}',
    ]);
    assert.deepEqual(show(await plan(['dev@lists.example.org', 'dev+urgent@lists.example.org'])), [
      'lists dev@lists.example.org,dev+urgent@lists.example.org {}',
    ]);
  });

  it('two workflows start a process each', async () => {
    assert.deepEqual(show(await plan(['wf+count@example.org', 'wf+pdfsize@example.org'])), [
      'workflows wf+count@example.org {"route":"count"}',
      'workflows wf+pdfsize@example.org {"route":"pdfsize"}',
    ]);
  });

  it('one workflow by id under two spellings (run+7@, run+07@) starts one process; another id its own', async () => {
    assert.deepEqual(show(await plan(['run+7@example.org', 'run+07@example.org', 'run+8@example.org'])), [
      'workflow-ids run+7@example.org,run+07@example.org {"objectId":"7"}',
      'workflow-ids run+8@example.org {"objectId":"8"}',
    ]);
  });

  it('two projects get a work package each; one project under two spellings gets one', async () => {
    assert.equal((await plan(['web@tracker.example.org', 'ops@tracker.example.org'])).length, 2);
    assert.equal((await plan(['web@tracker.example.org', 'WEB@tracker.example.org'])).length, 1);
  });

  it('a webhook and a forward take all recipients in one delivery, each with its own captures', async () => {
    for (const [route, local] of [['hook', 'hook'], ['relay', 'relay']]) {
      const p = await plan([`${local}+a@example.org`, `${local}+b@example.org`, `${local}+c@example.org`]);
      assert.equal(p.length, 1, route);
      assert.equal(p[0].destination, '');
      assert.deepEqual(p[0].recipientCaptures, {
        [`${local}+a@example.org`]: { tag: 'a' },
        [`${local}+b@example.org`]: { tag: 'b' },
        [`${local}+c@example.org`]: { tag: 'c' },
      });
      // An empty destination keeps the id deliveries had before destinations existed.
      assert.equal(deliveryId('m', route, 0, p[0].destination), deliveryId('m', route, 0));
    }
  });
});

describe('fan-out, for any set of recipients (property)', () => {
  // Folder ids as recipients write them: leading zeros and case are theirs to choose.
  const rcpt = fc
    .tuple(fc.integer({ min: 1, max: 40 }), fc.nat({ max: 2 }), fc.boolean())
    .map(([n, zeros, upper]) => `${upper ? 'OGO' : 'ogo'}+${'0'.repeat(zeros)}${n}@example.org`);

  it('one delivery per distinct folder; every recipient in exactly one; ids stable across plans and orders', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(rcpt, { minLength: 1, maxLength: 60 }), async (rcpts) => {
        const p = await plan(rcpts);
        const folders = new Set(rcpts.map((r) => Number(/\+(\d+)@/.exec(r)![1])));
        assert.equal(p.length, folders.size);
        // The same address twice in the envelope is one recipient: the first spelling stays.
        const distinct = rcpts.filter((r, i) => rcpts.findIndex((x) => x.toLowerCase() === r.toLowerCase()) === i);
        assert.deepEqual(p.flatMap((d) => d.recipients).sort(), [...distinct].sort());
        for (const d of p) {
          const ids = new Set(d.recipients.map((r) => Number(/\+(\d+)@/.exec(r)![1])));
          assert.equal(ids.size, 1, `one folder per delivery: ${d.recipients.join(',')}`);
          assert.equal(d.destination, `folder ${[...ids][0]}`);
        }
        // A replay or a sweep after a crash plans again, in whatever order: the same ids.
        const ids = (x: PlannedDelivery[]) => x.map((d) => deliveryId('m', d.route, d.targetIndex, d.destination)).sort();
        assert.deepEqual(ids(await plan([...rcpts].reverse())), ids(p));
      }),
      { numRuns: 200 },
    );
  });
});
