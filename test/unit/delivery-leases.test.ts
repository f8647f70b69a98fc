import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { describe, it } from 'node:test';
import { leaseOwnerId, ownerIsDead } from '../../src/store/delivery-leases.js';

describe('which lease owners are surely dead', () => {
  const self = leaseOwnerId('me');
  it('a process on this host that no longer exists', () => {
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!; // exited and reaped
    assert.equal(ownerIsDead(leaseOwnerId('x', os.hostname(), gone), self), true);
  });
  it('an earlier start under our own pid (a container restarted): it is not us, so it died', () => {
    assert.equal(ownerIsDead(leaseOwnerId('earlier'), self), true);
  });
  it('never ourselves, a live process on this host (a second serve, `postroom deliver`), another host, or an id of another form', () => {
    assert.equal(ownerIsDead(self, self), false);
    assert.equal(ownerIsDead(leaseOwnerId('x', os.hostname(), process.ppid), self), false);
    assert.equal(ownerIsDead(leaseOwnerId('x', `not-${os.hostname()}`, 999_999_999), self), false);
    assert.equal(ownerIsDead('A', self), false);
  });
});
