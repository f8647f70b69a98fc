import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { effectiveOptions } from '../../src/domain/accounts/config.js';
import { resolveSecret, secretBox } from '../../src/domain/accounts/secret-box.js';
import { envelopeSenderOf } from '../../src/ingress/fetch/keep.js';
import { isStale } from '../../src/ingress/fetch/scheduler.js';
import { reconnectDelay } from '../../src/ingress/fetch/watch.js';
import { bareAddress } from '../../src/outbound/compose.js';
import { dedupKey } from '../../src/store/messages.js';
import { tempDir } from '../helpers/env.js';

it('seals a password so that only the same key and the same account id open it', () => {
  const box = secretBox('a secret of some length');
  const sealed = box.seal('hunter2', 'ma_1');
  assert.match(sealed, /^v1:[A-Za-z0-9_-]+$/);
  assert.ok(!sealed.includes('hunter2'));
  assert.equal(box.open(sealed, 'ma_1'), 'hunter2');
  assert.notEqual(box.seal('hunter2', 'ma_1'), sealed, 'a fresh nonce every time');
  assert.throws(() => box.open(sealed, 'ma_2'), /secret key differs/, 'moved to another account: refused');
  assert.throws(() => secretBox('another secret key!').open(sealed, 'ma_1'), /secret key differs/);
  const tampered = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'BB' : 'AA');
  assert.throws(() => box.open(tampered, 'ma_1'));
});

it('generates the secret once into DATA_DIR/secret-key (0600) when none is configured; a configured one wins', () => {
  const tmp = tempDir();
  try {
    const a = resolveSecret(undefined, tmp.dir);
    assert.equal(resolveSecret(undefined, tmp.dir), a);
    assert.equal(readFileSync(path.join(tmp.dir, 'secret-key'), 'utf8').trim(), a);
    assert.equal(statSync(path.join(tmp.dir, 'secret-key')).mode & 0o777, 0o600);
    assert.equal(resolveSecret('configured-secret-123', tmp.dir), 'configured-secret-123');
  } finally {
    tmp.cleanup();
  }
});

it('POSTROOM_SECRET_KEY wins over secretKey in the file; mail: keys have defaults', () => {
  const cfg = validateConfig({ secretKey: 'from-the-file-0123456' }, { POSTROOM_SECRET_KEY: 'from-the-environment-1' });
  assert.equal(cfg.secretKey, 'from-the-environment-1');
  assert.equal(cfg.mail.fetch, true);
  assert.equal(cfg.mail.staleAfter, 600_000);
  assert.throws(() => validateConfig({ mail: { fetchh: true } }), /mail\.fetchh: unknown key/);
  assert.throws(() => validateConfig({ secretKey: 'short' }), /secretKey/);
});

it('takes after_read_timeout from the folder, else the account, else the profile', () => {
  assert.deepEqual(effectiveOptions({ after_read_timeout: 1 }, { after_read_timeout: 2 }, { after_read_timeout: 3 }).after_read_timeout, 3);
  assert.deepEqual(effectiveOptions({ after_read_timeout: 1 }, { after_read_timeout: 2 }, {}).after_read_timeout, 2);
  assert.deepEqual(effectiveOptions({ after_read_timeout: 1 }, {}, { apop: true }), { after_read_timeout: 1, apop: true });
  assert.equal(effectiveOptions({}, undefined, {}).after_read_timeout, undefined);
});

it('takes the envelope sender of fetched mail as fetchmail does: Return-Path, else Sender, else From (<> stays the null sender)', () => {
  const of = (s: string) => envelopeSenderOf(Buffer.from(s));
  assert.equal(of('Return-Path: <bounce@example.org>\r\nFrom: a@example.org\r\nSubject: x\r\n\r\nbody'), 'bounce@example.org');
  assert.equal(of('Return-Path: <>\r\nFrom: MAILER-DAEMON@example.org\r\n\r\n'), '', 'a bounce keeps the null sender');
  assert.equal(of('Return-path:\r\n <folded@example.org>\r\n\r\n'), 'folded@example.org');
  assert.equal(of('From: Ann <ann@example.org>\r\nSender: List <list-owner@example.org>\r\n\r\n'), 'list-owner@example.org', 'Sender before From');
  assert.equal(of('From: "Ann, A." <ann@example.org>, bob@example.org\r\n\r\n'), 'ann@example.org', 'the first From: address');
  assert.equal(of('From: ann@example.org (Ann Example)\r\n\r\n'), 'ann@example.org', 'a bare address with a comment');
  assert.equal(of('Resent-From: <re@example.org>\r\nFrom: ann@example.org\r\n\r\n'), 're@example.org');
  assert.equal(of('Sender: not an address\r\nFrom: ann@example.org\r\n\r\n'), 'ann@example.org', 'an unusable header is skipped');
  assert.equal(of('Reply-To: r@example.org\r\n\r\n'), 'r@example.org');
  assert.equal(of('Subject: x\r\n\r\nFrom: <not@header>\r\n'), '', 'only the header block counts; none at all: the null sender');
  assert.equal(of('From: =?utf-8?q?Ann?= <ann@example.org>\r\n\r\n'), 'ann@example.org');
});

it('dedups messages without Message-ID only within a scope (a fetched folder)', () => {
  assert.equal(dedupKey(null, 'abc', ['a@b']), null);
  const k = dedupKey(null, 'abc', ['a@b'], 'mf_1');
  assert.match(k!, /^[0-9a-f]{64}$/);
  assert.equal(dedupKey(null, 'abc', ['A@B'], 'mf_1'), k);
  assert.notEqual(dedupKey(null, 'abc', ['a@b'], 'mf_2'), k);
  assert.notEqual(dedupKey(null, 'abd', ['a@b'], 'mf_1'), k);
  assert.equal(dedupKey('<m@x>', 'abc', ['a@b'], 'mf_1'), dedupKey('<m@x>', 'abc', ['a@b']), 'with a Message-ID the scope changes nothing');
});

it('reconnects after 1, 2, 4 … s with jitter, capped', () => {
  for (let n = 1; n <= 12; n++) {
    const d = reconnectDelay(n, 60_000);
    const base = Math.min(60_000, 1000 * 2 ** (n - 1));
    assert.ok(d >= base * 0.8 - 1 && d <= base * 1.2 + 1, `attempt ${n}: ${d}`);
  }
});

it('calls an enabled folder stale when its last good poll is older than staleAfter', () => {
  const now = Date.parse('2026-11-21T12:00:00Z');
  const f = { enabled: true, createdAt: '2026-11-21T11:00:00.000Z', health: { lastOkAt: '2026-11-21T11:55:00.000Z', lastError: null, lastErrorAt: null, consecutiveFailures: 0 } };
  assert.equal(isStale(f, 10 * 60_000, now), false);
  assert.equal(isStale(f, 2 * 60_000, now), true);
  assert.equal(isStale({ ...f, enabled: false }, 1, now), false);
  assert.equal(isStale({ ...f, health: { ...f.health, lastOkAt: null } }, 10 * 60_000, now), true, 'never polled: counted from creation');
});

it('takes the bare address of a display-name address', () => {
  assert.equal(bareAddress('App <app@example.org>'), 'app@example.org');
  assert.equal(bareAddress('app@example.org'), 'app@example.org');
});
