import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

/** On SQLite the API's message list runs on a thread with a read-only connection of its own. */
describe('the SQLite read thread', () => {
  let pr: TestPostroom;
  before(async () => {
    pr = await startTestPostroom({ smtp: { enabled: false }, routes: [{ name: 'all', match: { recipient: '*@postroom.test' }, deliver: [{ discard: {} }] }] });
  });
  after(() => pr?.close());

  it('answers message lists with what the main connection committed, and a search through the index', async (t) => {
    if (pr.db.dialect !== 'sqlite') return t.skip('SQLite only: PostgreSQL reads on its own server');
    const res = await pr.api('/api/v1/inbound?recipient=a@postroom.test&sender=s@example.org', { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: 'From: s@example.org\r\nSubject: thread check\r\n\r\nthe body says marmalade\r\n' });
    assert.equal(res.status, 202);
    const id = ((await res.json()) as { id: string }).id;
    const all = await pr.db.reader!.listMessagePage({ limit: 10 });
    assert.deepEqual(all?.rows.map((m) => m.id), [id]);
    for (let i = 0; i < 100 && !(await sql`select 1 from message_text`.execute(pr.db.kysely)).rows.length; i++) await new Promise((r) => setTimeout(r, 50));
    const found = await pr.db.reader!.listMessagePage({ limit: 10, search: [{ field: 'text', value: 'marmalade', negate: false }] });
    assert.deepEqual(found?.rows.map((m) => m.id), [id]);
  });
});
