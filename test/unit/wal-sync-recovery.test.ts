import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WalSync } from '../../src/store/wal-sync.js';

/** A log file whose fsyncs fail while `failing` says so, counting them. */
function fakeLog(failing: () => boolean) {
  let syncs = 0;
  return {
    syncs: () => syncs,
    open: async () => ({
      async sync() {
        syncs++;
        if (failing()) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
      },
      async close() {},
    }),
  };
}

describe('WalSync after a failed fsync of the log', () => {
  it('acknowledges nothing again until the log was checkpointed into the database file', async () => {
    let fail = true;
    const log = fakeLog(() => fail);
    const recoveries: string[] = [];
    let recoverFails = true;
    const wal = new WalSync('/nowhere-wal', async () => {
      recoveries.push(recoverFails ? 'failed' : 'ok');
      if (recoverFails) throw new Error('checkpoint busy');
    }, log.open);

    await assert.rejects(wal.after(), /EIO/);
    assert.equal(wal.unsure, true);
    assert.deepEqual(recoveries, [], 'no recovery before the next sync asks for one');

    // The disk answers again (Linux reports a writeback error once): a sync alone would succeed
    // and acknowledge a retransmission of what may never have reached the disk. It must not.
    fail = false;
    await assert.rejects(wal.after(), /checkpoint busy/);
    assert.equal(log.syncs(), 1, 'no fsync of the log counts as durable while the recovery fails');
    assert.equal(wal.unsure, true);

    recoverFails = false;
    await wal.after();
    assert.deepEqual(recoveries, ['failed', 'ok']);
    assert.equal(wal.unsure, false);
    assert.equal(log.syncs(), 2);

    // Recovered: later syncs are plain fsyncs again.
    await wal.after();
    assert.deepEqual(recoveries, ['failed', 'ok']);
    assert.equal(log.syncs(), 3);
  });

  it('callers queued behind a failing fsync wait for the recovery too', async () => {
    let fail = true;
    const log = fakeLog(() => fail);
    let recovered = 0;
    const wal = new WalSync('/nowhere-wal', async () => {
      recovered++;
      fail = false;
    }, log.open);
    const first = wal.after();
    const second = wal.after(); // queued: its commit may have come after the first fsync started
    await assert.rejects(first, /EIO/);
    await second;
    assert.equal(recovered, 1);
    assert.equal(wal.unsure, false);
  });
});
