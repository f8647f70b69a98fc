import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WalSync } from '../../src/store/wal-sync.js';

/** A log file that counts the descriptors opened on it and those closed. */
function countedLog() {
  const n = { opened: 0, closed: 0, syncs: 0 };
  return {
    n,
    open: async () => {
      n.opened++;
      return {
        async sync() {
          await new Promise((r) => setImmediate(r));
          n.syncs++;
        },
        async close() {
          n.closed++;
        },
      };
    },
  };
}

describe('WalSync close', () => {
  it('runs the syncs asked for before the close, then leaves no descriptor open', async () => {
    const log = countedLog();
    const wal = new WalSync('/nowhere-wal', async () => {}, log.open);
    const first = wal.after();
    const second = wal.after(); // queued behind the first
    await wal.close();
    await Promise.all([first, second]);
    assert.equal(log.n.syncs, 2);
    assert.deepEqual([log.n.opened, log.n.closed], [1, 1]);
  });

  it('a commit that asks after the close is refused and opens no new descriptor on the log', async () => {
    const log = countedLog();
    const wal = new WalSync('/nowhere-wal', async () => {}, log.open);
    await wal.after();
    await wal.close();
    // Reopening here would leave a descriptor nothing closes (Node warns DEP0137 when it is
    // collected), pointing at the log of whatever database opens this file next.
    await assert.rejects(wal.after(), /database is closed/);
    assert.deepEqual([log.n.opened, log.n.closed], [1, 1]);
  });
});
