import assert from 'node:assert/strict';
import { test } from 'node:test';
import { receivedHeader, rfc5322Date } from '../../src/intake/trace.js';

const base = { mailFrom: 'a@x', ingress: 'smtp', receivedAt: new Date('2026-11-21T06:07:08Z') };

test('names the protocol per RFC 3848 and the recipient only when there is one', () => {
  const one = receivedHeader({ ...base, rcptTo: ['b@y'], helo: 'h.example', clientIp: '192.0.2.1', tls: 'TLSv1.3', authUser: 'u' }, 'ID1', 'mx');
  assert.equal(one, 'Received: from h.example ([192.0.2.1])\r\n\tby mx (Postroom) with ESMTPSA id ID1\r\n\tfor <b@y>;\r\n\tSat, 21 Nov 2026 06:07:08 +0000\r\n');
  const two = receivedHeader({ ...base, rcptTo: ['b@y', 'hidden-bcc@y'] }, 'ID2', 'mx');
  assert.ok(!two.includes('hidden-bcc'), 'a Bcc recipient must not leak into the trace header');
});

test('cannot be broken out of by a hostile HELO', () => {
  const h = receivedHeader({ ...base, rcptTo: ['b@y'], helo: 'evil\r\nX-Injected: yes', clientIp: '192.0.2.1' }, 'ID', 'mx');
  assert.equal(h.split('\r\n').filter((l) => l.startsWith('X-Injected')).length, 0);
  assert.equal(rfc5322Date(new Date('2026-01-02T03:04:05Z')), 'Fri, 02 Jan 2026 03:04:05 +0000');
});
