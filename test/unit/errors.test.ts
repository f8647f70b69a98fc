import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  asMailError,
  CATALOGUE,
  mailError,
  MailError,
  SYSEXITS,
  toHttpStatus,
  toProblem,
  toSmtpReply,
  toStderrLine,
  toSysexit,
  type ErrorCode,
} from '../../src/core/errors.js';

test('every catalogue entry has an RFC 3463 status whose class matches its SMTP code', () => {
  for (const [code, e] of Object.entries(CATALOGUE)) {
    assert.match(e.status, /^[245]\.\d{1,3}\.\d{1,3}$/, code);
    assert.equal(String(e.smtp)[0], e.status[0], `${code}: ${e.smtp} vs ${e.status}`);
  }
});

test('disposition follows the status class: 4.x.x transient, 5.x.x permanent', () => {
  assert.equal(mailError('STORE_FAILED').disposition, 'transient');
  assert.equal(mailError('STORE_FAILED').transient, true);
  assert.equal(mailError('UNKNOWN_RECIPIENT').disposition, 'permanent');
  assert.equal(mailError('UNKNOWN_RECIPIENT').transient, false);
});

test('unknown errors become transient INTERNAL: a retry loses nothing, a wrong 5xx loses mail', () => {
  const e = asMailError(new TypeError('boom'));
  assert.equal(e.code, 'INTERNAL');
  assert.equal(e.transient, true);
  assert.ok(e.cause instanceof TypeError);
  assert.equal(asMailError('a string').code, 'INTERNAL');
  assert.equal(asMailError(undefined).code, 'INTERNAL');
  const mine = mailError('TOO_LARGE');
  assert.equal(asMailError(mine), mine);
});

test('a full disk is STORE_FULL 452 4.3.1, never a 5xx', () => {
  for (const errno of ['ENOSPC', 'EDQUOT']) {
    const err = Object.assign(new Error('no space'), { code: errno });
    assert.equal(asMailError(err).code, 'STORE_FULL');
    assert.deepEqual(toSmtpReply(err), { code: 452, message: '4.3.1 Insufficient storage; try again later' });
    assert.equal(toHttpStatus(err), 507);
    assert.equal(toSysexit(err), SYSEXITS.TEMPFAIL);
  }
});

test('SMTP replies carry the enhanced status first and never a line break', () => {
  assert.deepEqual(toSmtpReply(mailError('TOO_LARGE')), {
    code: 552,
    message: '5.3.4 Message size exceeds fixed maximum message size',
  });
  assert.deepEqual(toSmtpReply(mailError('REJECTED', 'bad\r\nMAIL FROM:<x>')), { code: 550, message: '5.7.1 bad MAIL FROM:<x>' });
  assert.equal(toStderrLine(mailError('UNKNOWN_RECIPIENT', 'no\nsuch')), '5.1.1 no such');
});

test('internal details never reach a client: INTERNAL replies with the catalogue text', () => {
  const e = mailError('INTERNAL', 'SQLITE_CORRUPT at /var/lib/postroom/postroom.db');
  assert.equal(toSmtpReply(e).message, '4.3.0 Internal error; try again later');
  assert.equal(toProblem(e).detail, 'Internal error; try again later');
});

test('sysexits: transient is always EX_TEMPFAIL; permanent by subject', () => {
  const cases: [ErrorCode, number][] = [
    ['STORE_FAILED', SYSEXITS.TEMPFAIL],
    ['TOO_MANY_RECIPIENTS', SYSEXITS.TEMPFAIL],
    ['UNKNOWN_RECIPIENT', SYSEXITS.NOUSER],
    ['BAD_RECIPIENT_ADDRESS', SYSEXITS.DATAERR],
    ['RELAY_DENIED', SYSEXITS.NOPERM],
    ['BARE_LINE_ENDING', SYSEXITS.PROTOCOL],
    ['EMPTY_MESSAGE', SYSEXITS.NOINPUT],
    ['TOO_LARGE', SYSEXITS.DATAERR],
  ];
  for (const [code, exit] of cases) assert.equal(toSysexit(mailError(code)), exit, code);
  assert.equal(toSysexit(new Error('?')), SYSEXITS.TEMPFAIL);
  // Never 1: Postfix would bounce with no reason.
  for (const code of Object.keys(CATALOGUE) as ErrorCode[]) assert.notEqual(toSysexit(mailError(code)), 1, code);
});

test('HTTP status: API codes map to 401/404/400, transient to 503, policy to 403', () => {
  const cases: [ErrorCode, number][] = [
    ['UNAUTHORISED', 401],
    ['NOT_FOUND', 404],
    ['INVALID_REQUEST', 400],
    ['TOO_LARGE', 413],
    ['STORE_FULL', 507],
    ['STORE_FAILED', 503],
    ['INTERNAL', 503],
    ['RELAY_DENIED', 403],
    ['UNKNOWN_RECIPIENT', 422],
    ['BAD_CONTENT', 422],
  ];
  for (const [code, status] of cases) assert.equal(toHttpStatus(mailError(code)), status, code);
  for (const code of Object.keys(CATALOGUE) as ErrorCode[]) {
    const s = toHttpStatus(mailError(code));
    assert.ok(s >= 400 && s < 600, `${code} → ${s}`);
  }
});

test('problem JSON (RFC 9457) carries a stable code, status, enhanced status and disposition', () => {
  assert.deepEqual(toProblem(mailError('NOT_FOUND', 'No message abc'), '/api/v1/messages/abc'), {
    type: 'urn:postroom:error:not_found',
    title: 'NOT_FOUND',
    status: 404,
    detail: 'No message abc',
    code: 'NOT_FOUND',
    enhancedStatus: '5.1.1',
    disposition: 'permanent',
    instance: '/api/v1/messages/abc',
  });
  assert.equal('instance' in toProblem(mailError('NOT_FOUND')), false);
  assert.equal(toProblem(new Error('x')).status, 503);
});

test('overrides keep the code but change status and SMTP code, and carry retryAfter', () => {
  const e = mailError('TARGET_TEMPFAIL', 'upstream said 429', { retryAfter: 30, status: '4.7.0', smtpCode: 450 });
  assert.ok(e instanceof MailError);
  assert.equal(e.code, 'TARGET_TEMPFAIL');
  assert.deepEqual(toSmtpReply(e), { code: 450, message: '4.7.0 upstream said 429' });
  assert.equal(e.retryAfter, 30);
});
