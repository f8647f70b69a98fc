import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { MESSAGE_STATUSES } from '../../src/core/message.js';
import { waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

/**
 * Extra values for Postroom's own enumerated fields (mail.model.<entity>.values): a profile's
 * protocol and a message's status take the operator's values beside the built-in ones,
 * validated, shown, in the OpenAPI document, and with no behaviour of Postroom's.
 */
describe('mail model: extra values for built-in enumerations', () => {
  let pr: TestPostroom;

  before(async () => {
    pr = await startTestPostroom({
      mail: {
        fetch: false,
        // A send to the closed port below stays pending: the first retry is an hour away.
        outboundRetry: { schedule: ['1h'], jitter: 0, maxAttempts: 5 },
        model: { profiles: { values: { protocol: ['ews'] } }, messages: { values: { status: ['archived', 'reviewed'] } } },
      },
      delivery: { pollInterval: 100 },
    });
  });
  after(async () => {
    await pr?.close();
  });

  const call = async (method: string, url: string, body?: unknown) => {
    const res = await pr.api(url, body === undefined ? { method } : { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as any };
  };

  it('a profile of an extra protocol is kept and shown, needs its port, and nothing is asked of its server', async () => {
    const noPort = await call('POST', '/rest/v1/model/email/Profiles', { name: 'exchange', protocol: 'ews', host: '127.0.0.1', tls: 'tls' });
    assert.equal(noPort.status, 400);
    assert.match(noPort.body.detail, /body\.port: required for protocol ews/);
    const p = await call('POST', '/rest/v1/model/email/Profiles', { name: 'exchange', protocol: 'ews', host: '127.0.0.1', port: 1, tls: 'tls', smtp: { host: '127.0.0.1', port: 1, tls: 'none' } });
    assert.equal(p.status, 201, JSON.stringify(p.body));
    assert.equal(p.body.protocol, 'ews');
    assert.equal((await call('GET', `/api/v1/email/profiles/${p.body.id}`)).body.protocol, 'ews');
    const other = await call('POST', '/api/v1/email/profiles', { name: 'x', protocol: 'mapi', host: '127.0.0.1', port: 1, tls: 'tls' });
    assert.equal(other.status, 400);
    assert.match(other.body.detail, /body\.protocol/);
    const a = await call('POST', '/api/v1/email/accounts', { profile: p.body.id, name: 'ews-1', username: 'u', password: 'pw', address: 'u@example.org' });
    assert.equal(a.status, 201, JSON.stringify(a.body));
    assert.deepEqual(a.body.folders, []);
    assert.equal(a.body.discovery.ok, false);
    assert.match(a.body.discovery.error, /protocol ews is not one Postroom fetches through/);
  });

  it("a message takes an extra status by PATCH, is listed by it, and keeps it; built-in ones other than sending stay refused", async () => {
    const p = await call('POST', '/api/v1/email/profiles', { name: 'smtp-only', protocol: 'imap', host: '127.0.0.1', port: 1, tls: 'none', smtp: { host: '127.0.0.1', port: 1, tls: 'none' } });
    const a = await call('POST', '/api/v1/email/accounts', { profile: p.body.id, name: 'out', username: 'u', password: 'pw', address: 'u@example.org' });
    const draft = await call('POST', '/api/v1/email/messages', { account: a.body.id, status: 'draft', to: 'bob@example.net', subject: 'kept', text: 'x' });
    assert.equal(draft.status, 201);
    const set = await call('PATCH', `/rest/v1/model/email/Messages/${draft.body.id}`, { status: 'archived' });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.equal(set.body.status, 'archived');
    assert.equal((await call('GET', `/rest/v1/model/email/Messages/${draft.body.id}`)).body.status, 'archived');
    const listed = await call('GET', '/api/v1/email/messages?status=archived');
    assert.deepEqual(listed.body.items.map((m: { id: string }) => m.id), [draft.body.id]);
    // No behaviour of Postroom's: an archived draft is no draft, so it cannot be sent.
    assert.equal((await call('PATCH', `/api/v1/email/messages/${draft.body.id}`, { status: 'sending' })).status, 409);
    for (const status of ['sent', 'received', 'shredded']) {
      const r = await call('PATCH', `/api/v1/email/messages/${draft.body.id}`, { status });
      assert.equal(r.status, 400, status);
      assert.match(r.body.detail, /body\.status/);
    }
  });

  it('an extra status is refused (409) while a delivery of the message is pending', async () => {
    const p = await call('POST', '/api/v1/email/profiles', { name: 'unreachable', protocol: 'imap', host: '127.0.0.1', port: 1, tls: 'none', smtp: { host: '127.0.0.1', port: 1, tls: 'none' } });
    const a = await call('POST', '/api/v1/email/accounts', { profile: p.body.id, name: 'out2', username: 'u', password: 'pw', address: 'u@example.org' });
    const m = await call('POST', '/api/v1/email/messages', { account: a.body.id, to: 'bob@example.net', subject: 'retrying', text: 'x' });
    await waitFor(async () => ((await call('GET', `/api/v1/email/messages/${m.body.id}`)).body.send?.attempts ?? 0) >= 1, 'the first attempt');
    const r = await call('PATCH', `/api/v1/email/messages/${m.body.id}`, { status: 'reviewed' });
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.match(r.body.detail, /delivery pending/);
    assert.equal((await call('GET', `/api/v1/email/messages/${m.body.id}`)).body.status, 'sending');
  });

  it("the served OpenAPI document lists the extra values beside the built-in ones", async () => {
    const doc = JSON.stringify((await call('GET', '/api/v1/openapi.json')).body);
    assert.match(doc, /"enum":\["imap","pop3","ews"\]/);
    assert.match(doc, /"enum":\["sending","archived","reviewed"\]/);
    assert.ok(doc.includes(`"enum":${JSON.stringify([...MESSAGE_STATUSES, 'archived', 'reviewed'])}`), 'the message statuses, then the extras');
  });

  it('the config refuses a field that is no enumeration, and a built-in value given again', () => {
    assert.throws(() => validateConfig({ mail: { model: { folders: { values: { type: ['archive'] } } } } }), /not an enumerated field of folders \(it has none\)/);
    assert.throws(() => validateConfig({ mail: { model: { profiles: { values: { tls: ['ssl'] } } } } }), /not an enumerated field of profiles \(those are: protocol\)/);
    assert.throws(() => validateConfig({ mail: { model: { messages: { values: { status: ['sent'] } } } } }), /sent is a built-in value of status/);
    assert.throws(() => validateConfig({ mail: { model: { profiles: { values: { protocol: ['exchange-web'] } } } } }), /at most 8 characters/);
  });
});
