import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { installationId, loopOf } from '../../src/intake/loop.js';
import { receivedHeader } from '../../src/mime/trace.js';
import { parseHeaderBlock } from '../../src/mime/header-sniff.js';

const env = { mailFrom: 'a@x', rcptTo: ['b@y'], ingress: 'smtp', clientIp: '192.0.2.1', receivedAt: new Date(0) };
const limits = { maxReceived: 50, maxPasses: 2, installationId: 'abc123def456' };
const ours = (id: string) => receivedHeader(env, 'M1', 'mx.example', id);

test('more Received: headers than maxReceived is a loop (5.4.6); exactly maxReceived is not', () => {
  const block = (n: number) => parseHeaderBlock('Received: from a by b; Sat, 21 Nov 2026 06:00:00 +0000\r\n'.repeat(n));
  assert.equal(loopOf(block(50), limits), undefined);
  const e = loopOf(block(51), limits);
  assert.equal(e?.status, '5.4.6');
  assert.equal(e?.smtpCode, 554);
});

test('our own Received: header maxPasses times is a loop; another installation\'s is not counted', () => {
  assert.match(ours(limits.installationId), /by mx\.example \(Postroom abc123def456\) with ESMTP id M1/);
  const once = parseHeaderBlock(ours(limits.installationId));
  assert.equal(loopOf(once, limits), undefined);
  const twice = parseHeaderBlock(ours(limits.installationId) + ours(limits.installationId));
  assert.match(loopOf(twice, limits)?.message ?? '', /passed this Postroom 2 times/);
  const others = parseHeaderBlock(ours('ffffffffffff').repeat(5));
  assert.equal(loopOf(others, limits), undefined);
  assert.equal(loopOf(twice, { ...limits, installationId: undefined }), undefined, 'no id: passes are not counted');
});

test('the installation id comes from the secret key: the same for every node sharing it, none when it cannot be read', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postroom-loop-'));
  try {
    assert.equal(installationId(undefined, dir), undefined, 'the pipe never creates the key file');
    writeFileSync(path.join(dir, 'secret-key'), 'k'.repeat(32) + '\n');
    const a = installationId(undefined, dir);
    assert.match(a ?? '', /^[0-9a-f]{12}$/);
    assert.equal(installationId('k'.repeat(32), '/nonexistent'), a);
    assert.notEqual(installationId('other-secret-key-0123', dir), a);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
