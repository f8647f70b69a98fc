import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { requirePeer } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { swaks } from '../helpers/swaks.js';

describe('RCPT TO with a quoted local part (RFC 5321 §4.1.2)', () => {
  let app: TestPostroom;
  before(async () => {
    app = await startTestPostroom();
  });
  after(() => app.close());

  test('accepts a quoted local part with spaces and slashes, as fax gateways address mail', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const run = await swaks(app.smtpPort, ['--to', '"Jan Novak/ACME/Sales/+420123456789"@fax', '--from', 'a@example.org']);
    assert.equal(run.code, 0, run.out);
    assert.ok(run.replies.some((r) => r.startsWith('250 2.1.5')), run.out);
    const rows = await app.db.kysely.selectFrom('messages').select('rcpt_to').execute();
    assert.deepEqual(rows.map((r) => JSON.parse(r.rcpt_to)), [['"Jan Novak/ACME/Sales/+420123456789"@fax']]);
  });

  test('still refuses an unquoted address with a space', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const run = await swaks(app.smtpPort, ['--to', 'Jan Novak@fax', '--from', 'a@example.org', '--quit-after', 'RCPT']);
    assert.ok(run.replies.some((r) => r.startsWith('501 5.1.3')), run.out);
  });
});
