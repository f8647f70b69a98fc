import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SYSEXITS, toSmtpReply, toSysexit, type MailError } from '../../src/core/errors.js';
import { answerOutcome, smtpFailure } from '../../src/net/remote-answer.js';
import { rejectError, rejectParams } from '../../src/targets/reject.js';

/** What `fn` throws, as a MailError. */
function thrown(fn: () => unknown): MailError {
  try {
    fn();
  } catch (e) {
    return e as MailError;
  }
  assert.fail('did not throw');
}

const problem = (status: number, body: Record<string, unknown>) => ({ status, contentType: 'application/problem+json', body: JSON.stringify(body) });

test("the reject target's configured code, status and words are the reply, 4xx transient and 5xx permanent", () => {
  const soft = rejectError(rejectParams.parse({ code: 450, status: '4.7.1', text: 'Greylisted, come back later' }));
  assert.equal(soft.code, 'REJECTED');
  assert.equal(soft.transient, true);
  assert.deepEqual(toSmtpReply(soft), { code: 450, message: '4.7.1 Greylisted, come back later' });
  assert.equal(toSysexit(soft), SYSEXITS.TEMPFAIL);
  const hard = rejectError(rejectParams.parse({}));
  assert.deepEqual(toSmtpReply(hard), { code: 550, message: '5.7.1 Message rejected' });
  assert.equal(toSysexit(hard), SYSEXITS.NOPERM);
});

test("another Postroom's problem document is passed on: its code when this build knows it, else a target failure of its class", () => {
  const known = thrown(() => answerOutcome(problem(422, { code: 'UNKNOWN_RECIPIENT', enhancedStatus: '5.1.1', detail: 'No such recipient here' })));
  assert.equal(known.code, 'UNKNOWN_RECIPIENT');
  assert.equal(toSysexit(known), SYSEXITS.NOUSER);
  // The remote's reject target answered 4xx with the REJECTED code: transient, and a 4xx SMTP code.
  const soft = thrown(() => answerOutcome(problem(503, { code: 'REJECTED', enhancedStatus: '4.7.1', detail: 'later' })));
  assert.equal(soft.code, 'REJECTED');
  assert.equal(soft.transient, true);
  assert.equal(soft.smtpCode, 451);
  const unknown = thrown(() => answerOutcome(problem(422, { code: 'FROM_A_NEWER_VERSION', enhancedStatus: '5.2.2', detail: 'Mailbox full' })));
  assert.equal(unknown.code, 'TARGET_REJECTED');
  assert.equal(unknown.status, '5.2.2');
  const unknownSoft = thrown(() => answerOutcome(problem(503, { code: 'FROM_A_NEWER_VERSION', enhancedStatus: '4.2.2', detail: 'Mailbox full' })));
  assert.equal(unknownSoft.code, 'TARGET_TEMPFAIL');
  assert.equal(unknownSoft.transient, true);
});

test("an SMTP server's reply keeps its enhanced status; its class follows the reply code", () => {
  const hard = smtpFailure(Object.assign(new Error('x'), { responseCode: 550, response: '550 5.1.1 <a@b>: no such user' }), 'mx.test');
  assert.deepEqual([hard.code, hard.status, hard.smtpCode], ['TARGET_REJECTED', '5.1.1', 550]);
  const soft = smtpFailure(Object.assign(new Error('x'), { responseCode: 451, response: '451 4.7.1 greylisted' }), 'mx.test');
  assert.deepEqual([soft.code, soft.status, soft.smtpCode], ['TARGET_TEMPFAIL', '4.7.1', 451]);
  // nodemailer counts a 503 after a failed pipelined command as transient: the 5.x.x moves to 4.x.x.
  const pipelined = smtpFailure(Object.assign(new Error('x'), { responseCode: 503, permanent: false, response: '503 5.5.1 Error: need RCPT command' }), 'mx.test');
  assert.deepEqual([pipelined.code, pipelined.status, pipelined.transient], ['TARGET_TEMPFAIL', '4.5.1', true]);
  const none = smtpFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'mx.test');
  assert.deepEqual([none.code, none.status], ['TARGET_CONNECT', '4.4.4']);
});
