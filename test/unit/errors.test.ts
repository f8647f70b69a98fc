import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  asMailError,
  CATALOGUE,
  isErrorCode,
  mailError,
  MailError,
  relayedError,
  SYSEXITS,
  toHttpStatus,
  toProblem,
  toSmtpReply,
  toStderrLine,
  toSysexit,
  type ErrorCode,
} from '../../src/core/errors.js';

// The subjects of RFC 3463 §3, 0 (other) to 7 (security), and the highest detail each has in the
// IANA registry of enhanced status codes (RFC 5248), which later RFCs extend (X.7.8 is RFC 4954's).
const DETAILS_PER_SUBJECT = [0, 10, 4, 6, 7, 6, 10, 30];
const TEMPORARY_EXITS = new Set<number>([SYSEXITS.TEMPFAIL]);

test('every catalogue entry: a defined RFC 3463 status, an SMTP code and exit code of its class, words to act on', () => {
  for (const [code, e] of Object.entries(CATALOGUE) as [ErrorCode, (typeof CATALOGUE)[ErrorCode]][]) {
    const m = /^([45])\.(\d)\.(\d{1,2})$/.exec(e.status);
    assert.ok(m, `${code}: ${e.status} is no 4.x.x or 5.x.x enhanced status`);
    const [, klass, subject, detail] = m;
    assert.ok(Number(detail) <= DETAILS_PER_SUBJECT[Number(subject)], `${code}: X.${subject}.${detail} is not defined in RFC 3463`);
    assert.ok(e.smtp >= 400 && e.smtp < 600, `${code}: SMTP ${e.smtp}`);
    assert.equal(String(e.smtp)[0], klass, `${code}: SMTP ${e.smtp} vs ${e.status}`);
    const err = mailError(code);
    assert.equal(err.transient, klass === '4', `${code}: disposition follows the class`);
    const exit = toSysexit(err);
    if (klass === '4') assert.equal(exit, SYSEXITS.TEMPFAIL, `${code}: transient exits 75`);
    else {
      // A specific EX_* the MTA maps to a bounce with a reason: never 0, 1, 70 (software) or 75.
      assert.ok(Object.values(SYSEXITS).includes(exit as never), `${code}: exit ${exit} is a sysexits code`);
      assert.ok(!TEMPORARY_EXITS.has(exit) && exit !== SYSEXITS.OK && exit !== SYSEXITS.SOFTWARE, `${code}: exit ${exit}`);
    }
    const http = toHttpStatus(err);
    // Transient: the server is busy or short of room (503, 507), or the client must slow down (429).
    assert.ok(klass === '4' ? http === 503 || http === 507 || http === 429 : http >= 400 && http < 500, `${code}: HTTP ${http} for ${e.status}`);
    assert.ok(e.text.trim().length >= 8 && !/[\r\n]/.test(e.text), `${code}: text a human can act on`);
    assert.match(code, /^[A-Z][A-Z0-9_]*$/, 'codes are stable upper-case identifiers');
  }
});

test('an unknown code does not compile', () => {
  // Pinned by the type check of the tests (tsconfig.test.json), which fails on an unused expect-error.
  const wrong = [
    // @ts-expect-error: not a catalogue key.
    () => mailError('NO_SUCH_CODE'),
    // @ts-expect-error: statuses come from the catalogue, not from a call site.
    () => mailError('CONFIG', 'x', { status: '5.3.5' }),
  ];
  assert.equal(wrong.length, 2);
  assert.equal(isErrorCode('MAIL_LOOP'), true);
  assert.equal(isErrorCode('REMOTE'), false);
  assert.equal(isErrorCode('toString'), false);
});

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(path.join(dir, d.name)) : d.name.endsWith('.ts') ? [path.join(dir, d.name)] : [],
  );
}

test('no source picks its own status: MailError is built by mailError or relayedError, and only remote or operator statuses are relayed', () => {
  const src = path.resolve(import.meta.dirname, '../../src');
  const files = sources(src);
  assert.ok(files.length > 100, `read ${files.length} sources`);
  const offences: string[] = [];
  for (const file of files) {
    const rel = path.relative(src, file);
    const text = readFileSync(file, 'utf8');
    if (rel !== path.join('core', 'errors.ts') && /new MailError\s*\(/.test(text)) offences.push(`${rel}: new MailError`);
    // mailError(code, detail, { status | smtpCode }) would override the catalogue.
    for (const m of text.matchAll(/\bmailError\(/g)) {
      let depth = 0;
      let i = m.index + 'mailError('.length - 1;
      for (; i < text.length; i++) {
        if (text[i] === '(') depth++;
        else if (text[i] === ')' && --depth === 0) break;
      }
      if (/\b(status|smtpCode)\s*:/.test(text.slice(m.index, i))) offences.push(`${rel}: mailError with a status`);
    }
    // A literal status passed to relayedError is our own choice: it belongs in the catalogue.
    for (const m of text.matchAll(/\brelayedError\(\s*[^,]+,\s*(['"`])/g)) offences.push(`${rel}: relayedError with a literal status (${m[0]})`);
  }
  assert.deepEqual(offences, []);
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

test('a relayed status keeps its class and the code, takes an SMTP code of its class, and carries retryAfter', () => {
  const e = relayedError('TARGET_TEMPFAIL', '4.7.0', 'upstream said 450 4.7.0 greylisted', { retryAfter: 30, smtpCode: 450 });
  assert.ok(e instanceof MailError);
  assert.equal(e.code, 'TARGET_TEMPFAIL');
  assert.deepEqual(toSmtpReply(e), { code: 450, message: '4.7.0 upstream said 450 4.7.0 greylisted' });
  assert.equal(e.retryAfter, 30);
  // An operator's 4xx refusal is transient whatever the code's own class.
  const soft = relayedError('REJECTED', '4.7.1', 'Try again later', { smtpCode: 451 });
  assert.equal(soft.transient, true);
  assert.equal(toSysexit(soft), SYSEXITS.TEMPFAIL);
  // An SMTP code of the other class is not passed on: the entry's, else 451/550.
  assert.equal(relayedError('REJECTED', '4.7.1', 'x', { smtpCode: 550 }).smtpCode, 451);
  assert.equal(relayedError('REJECTED', '5.7.26', 'x').smtpCode, 550);
  // No enhanced status at all (or a 2.x.x): the entry's.
  assert.equal(relayedError('TARGET_REJECTED', 'garbage', 'x').status, '5.0.0');
  assert.equal(relayedError('TARGET_REJECTED', '2.0.0', 'x').status, '5.0.0');
});

test('the new entries: permanent configuration error, target timeout, --sender usage, mail loop', () => {
  assert.deepEqual(toSmtpReply(mailError('MISCONFIGURED', 'no target of kind x')), { code: 554, message: '5.3.5 no target of kind x' });
  assert.equal(toSysexit(mailError('MISCONFIGURED')), SYSEXITS.CONFIG);
  assert.equal(mailError('TARGET_TIMEOUT').transient, true);
  assert.equal(mailError('TARGET_TIMEOUT').status, '4.4.7');
  assert.equal(toStderrLine(mailError('USAGE_BAD_SENDER')).slice(0, 6), '5.1.7 ');
  assert.equal(toSysexit(mailError('USAGE_BAD_SENDER')), SYSEXITS.USAGE);
  assert.equal(toSysexit(mailError('USAGE')), SYSEXITS.USAGE);
  assert.deepEqual(toSmtpReply(mailError('MAIL_LOOP')), { code: 554, message: '5.4.6 Routing loop detected' });
});
