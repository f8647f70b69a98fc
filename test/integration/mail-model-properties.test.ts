import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { upsertFolders } from '../../src/domain/accounts/store.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

/**
 * Extending the model, as the email processor service allowed: properties of the operator's
 * own on profiles, accounts, folders and messages, declared in mail.model, validated, shown.
 */
describe('mail model: properties of your own', () => {
  let pr: TestPostroom;

  before(async () => {
    pr = await startTestPostroom({
      mail: {
        fetch: false,
        model: {
          profiles: { properties: { region: { type: 'string', values: ['eu', 'us'] } } },
          accounts: { properties: { costCentre: { type: 'number' }, vip: { type: 'boolean' } } },
          folders: { properties: { team: {} } },
          messages: { properties: { stage: { type: 'string', values: ['new', 'reviewed', 'archived'] } } },
        },
      },
    });
  });
  after(async () => {
    await pr?.close();
  });

  const call = async (method: string, url: string, body?: unknown) => {
    const res = await pr.api(url, body === undefined ? { method } : { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as any };
  };

  it('profiles, accounts and folders take declared properties, refuse undeclared ones, wrong types and values outside the list', async () => {
    const bad = await call('POST', '/api/v1/email/profiles', { name: 'p0', protocol: 'imap', host: '127.0.0.1', port: 1, tls: 'none', properties: { region: 'asia' } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.detail, /body\.properties\.region: one of eu, us/);
    const unknown = await call('POST', '/api/v1/email/profiles', { name: 'p0', protocol: 'imap', host: '127.0.0.1', port: 1, tls: 'none', properties: { colour: 'red' } });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.detail, /body\.properties\.colour: not a property of profiles \(declared: region\)/);

    const p = await call('POST', '/rest/v1/model/email/Profiles', { name: 'p1', protocol: 'imap', host: '127.0.0.1', port: 1, tls: 'none', properties: { region: 'eu' } });
    assert.equal(p.status, 201, JSON.stringify(p.body));
    assert.deepEqual(p.body.properties, { region: 'eu' });

    const a = await call('POST', '/api/v1/email/accounts', { profile: p.body.id, name: 'a1', username: 'u', password: 'x', properties: { costCentre: 42 } });
    assert.equal(a.status, 201, JSON.stringify(a.body));
    assert.equal((await call('PATCH', `/api/v1/email/accounts/${a.body.id}`, { properties: { vip: 'yes' } })).status, 400);
    const patched = await call('PATCH', `/api/v1/email/accounts/${a.body.id}`, { properties: { vip: true } });
    assert.deepEqual(patched.body.properties, { costCentre: 42, vip: true }, 'merged onto what was there');
    assert.deepEqual((await call('GET', `/rest/v1/model/email/Accounts/${a.body.id}`)).body.properties, { costCentre: 42, vip: true });
    assert.deepEqual((await call('PATCH', `/api/v1/email/accounts/${a.body.id}`, { properties: { costCentre: null } })).body.properties, { vip: true }, 'null removes one');

    const [f] = await upsertFolders(pr.db, a.body.id, [{ path: 'INBOX' }]);
    const folder = await call('PATCH', `/api/v1/email/folders/${f.id}`, { properties: { team: 'support' } });
    assert.deepEqual([folder.status, folder.body.properties], [200, { team: 'support' }]);
    assert.deepEqual((await call('GET', '/api/v1/email/folders')).body.items[0].properties, { team: 'support' });
  });

  it('a message takes declared properties through PATCH, shown by GET', async () => {
    const res = await pr.api('/api/v1/inbound?recipient=inbox@postroom.test&sender=bob@example.net', {
      method: 'POST',
      headers: { 'content-type': 'message/rfc822' },
      body: 'From: bob@example.net\r\nSubject: props\r\nMessage-ID: <props-1@example.net>\r\n\r\nhi\r\n',
    });
    const { id } = (await res.json()) as { id: string };
    assert.equal((await call('PATCH', `/api/v1/email/messages/${id}`, { properties: { stage: 'lost' } })).status, 400);
    const set = await call('PATCH', `/rest/v1/model/email/Messages/${id}`, { properties: { stage: 'reviewed' } });
    assert.deepEqual([set.status, set.body.properties], [200, { stage: 'reviewed' }]);
    assert.deepEqual((await call('GET', `/api/v1/email/messages/${id}`)).body.properties, { stage: 'reviewed' });
  });
});
