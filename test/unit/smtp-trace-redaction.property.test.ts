import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { REDACTED, ReceivedTrace, redactCommand } from '../../src/ingress/smtp-trace.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe('the received-data trace never holds AUTH credentials (RFC 4954)', () => {
  it('keeps the mechanism of an AUTH line and replaces its initial response', () => {
    assert.equal(redactCommand(`AUTH PLAIN ${b64('\0desk\0s3cret')}`, false), `AUTH PLAIN ${REDACTED}`);
    assert.equal(redactCommand(`auth login ${b64('desk')}`, false), `AUTH LOGIN ${REDACTED}`);
    assert.equal(redactCommand('AUTH LOGIN', false), 'AUTH LOGIN');
    assert.equal(redactCommand('AUTH', false), 'AUTH');
    // Credentials where the mechanism belongs: a broken client's, still a secret.
    assert.equal(redactCommand(`AUTH ${b64('\0desk\0s3cret')}`, false), `AUTH ${REDACTED}`);
    assert.equal(redactCommand('MAIL FROM:<a@example.org>', false), 'MAIL FROM:<a@example.org>');
  });

  it('replaces every line that answers a 334 challenge, whatever it holds', () => {
    assert.equal(redactCommand(b64('s3cret'), true), REDACTED);
    assert.equal(redactCommand('MAIL FROM:<a@example.org>', true), REDACTED);
  });

  it('property: no password, nor its base64, survives an AUTH exchange', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 4, maxLength: 40 }).filter((p) => !/\s/.test(p)),
        fc.constantFrom('PLAIN', 'LOGIN', 'plain', 'Login', 'XOAUTH2', 'WHATEVER'),
        fc.boolean(),
        (password, mech, initial) => {
          const trace = new ReceivedTrace(1024);
          const secret = b64(`\0desk@shop.example\0${password}`);
          trace.command('EHLO client.example', false);
          trace.command(initial ? `AUTH ${mech} ${secret}` : `AUTH ${mech}`, false);
          if (!initial) trace.command(secret, true);
          trace.command(b64(password), true);
          trace.command('MAIL FROM:<desk@shop.example>', false);
          const text = JSON.stringify(trace.take());
          assert.ok(!text.includes(secret) && !text.includes(b64(password)), text);
          // The password itself, where it is not also a word of the other lines.
          if (!'EHLO client.example MAIL FROM:<desk@shop.example> AUTH ****'.includes(password)) assert.ok(!text.includes(password), text);
        },
      ),
    );
  });

  it('keeps the first maxBytes of a message and counts all of it', () => {
    const trace = new ReceivedTrace(5);
    trace.command('DATA', false);
    trace.data(Buffer.from('Sub'));
    trace.data(Buffer.from('ject: x\r\n'));
    assert.deepEqual(trace.take(), { dialogue: ['DATA'], data: 'Subje', dataBytes: 12, dataTruncated: true });
    assert.equal(trace.empty(), true);
  });
});
