import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Destinations } from '../../src/delivery/destinations.js';
import { webhookTarget } from '../../src/targets/webhook.js';

const targets = new Map([['webhook', webhookTarget]]);
const hook = (url: string) => JSON.stringify({ url, format: 'json', timeout: 30_000, attachments: 'auto', inlineLimit: 1, allowPrivate: true });
const A = { route: 'a', targetIndex: 0 };

describe('per-destination limits and circuit breaker', () => {
  it('names a webhook destination by origin; targets without one are not limited', () => {
    const d = new Destinations(targets, 2, { failures: 3, pause: 1_000, maxPause: 8_000 });
    assert.equal(d.of('webhook', hook('https://Hooks.Example.com:443/a?x=1')), 'webhook https://hooks.example.com');
    assert.equal(d.of('webhook', hook('https://hooks.example.com/b')), 'webhook https://hooks.example.com');
    assert.equal(d.of('folder', '{}'), null);
    assert.equal(d.start('folder', {}, A), undefined);
  });

  it('admits at most the limit per destination, counting running ones and the batch being chosen', () => {
    const d = new Destinations(targets, 2, { failures: 3, pause: 1_000, maxPause: 8_000 });
    const c = (id: string, url: string) => ({ id, route: url, targetIndex: 0, kind: 'webhook', params: hook(url) });
    d.start('webhook', JSON.parse(hook('http://x.test/')), { route: 'http://x.test/', targetIndex: 0 });
    d.beginBatch();
    assert.deepEqual(
      ['1', '2', '3'].map((i) => d.admit(c(i, 'http://x.test/'))).concat(['4', '5', '6'].map((i) => d.admit(c(i, 'http://y.test/')))),
      [true, false, false, true, true, false],
    );
    assert.deepEqual(d.excluded(), [], 'one of two places taken: not full');
    d.start('webhook', JSON.parse(hook('http://x.test/')), { route: 'http://x.test/', targetIndex: 0 });
    assert.deepEqual(d.excluded(), [{ route: 'http://x.test/', targetIndex: 0 }], 'a full destination is left out of the next lease');
  });

  it('pauses after K consecutive failures, probes with one delivery, doubles the pause per failed probe, closes on success', () => {
    const events: string[] = [];
    const d = new Destinations(targets, 4, { failures: 3, pause: 1_000, maxPause: 3_000 }, (dest, e, x) => events.push(`${e} ${x.pauseMs}`));
    const p = JSON.parse(hook('http://down.test/'));
    let now = 0;
    const fail = () => d.finish(d.start('webhook', p, A), 'failed', now);
    fail();
    d.finish(d.start('webhook', p, A), 'ok', now); // a success in between resets the count
    fail();
    fail();
    assert.deepEqual(d.excluded(now), []);
    fail();
    assert.deepEqual(events, ['paused 1000']);
    assert.deepEqual(d.excluded(now + 999), [A], 'paused: not leased');
    now += 1_000;
    assert.deepEqual(d.excluded(now), [], 'pause over: one probe may go');
    const probe = d.start('webhook', p, A);
    assert.equal(probe?.probe, true);
    assert.deepEqual(d.excluded(now), [A], 'only one probe at a time');
    d.finish(probe, 'failed', now);
    assert.equal(d.nextOpening(now), now + 2_000, 'a failed probe doubles the pause');
    now += 2_000;
    d.finish(d.start('webhook', p, A), 'failed', now);
    assert.equal(d.nextOpening(now), now + 3_000, 'up to maxPause');
    now += 3_000;
    d.finish(d.start('webhook', p, A), 'ok', now);
    assert.deepEqual(events, ['paused 1000', 'paused 2000', 'paused 3000', 'closed 0']);
    assert.equal(d.snapshot(now)[0].failures, 0);
    assert.equal(d.nextOpening(now), undefined);
  });
});
