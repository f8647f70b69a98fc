import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileRecipientPattern, parseAddress, plusSegments } from '../../src/routing/address.js';

describe('addresses', () => {
  it('unquotes a quoted local part and lower-cases the domain only', () => {
    assert.deepEqual(parseAddress('<"Jan Novak/ACME"@FAX>'), { local: 'Jan Novak/ACME', domain: 'fax', address: 'Jan Novak/ACME@fax' });
    assert.equal(parseAddress('"a\\"b\\\\c"@x').local, 'a"b\\c');
    assert.equal(parseAddress('Mixed.Case@Example.ORG').address, 'Mixed.Case@example.org');
    assert.equal(parseAddress('postmaster').address, 'postmaster');
  });

  it('splits plus segments', () => {
    assert.deepEqual(plusSegments('ogo+wf+42'), ['ogo', 'wf', '42']);
  });

  it('matches each pattern kind and yields captures', () => {
    const cases: [string, string, Record<string, string> | null][] = [
      ['support@example.org', 'SUPPORT@example.org', {}],
      ['support@example.org', 'support2@example.org', null],
      ['*@example.org', 'any.one@example.org', {}],
      ['*@example.org', 'a@b@example.org', null],
      ['*', 'whatever', {}],
      ['s?@x', 'sa@x', {}],
      ['ogo+{objectId}@example.org', 'ogo+123@example.org', { objectId: '123' }],
      ['ogo+{objectId}@example.org', 'ogo+wf+1@example.org', null],
      ['ogo+wf+{route}@example.org', 'ogo+wf+approve@example.org', { route: 'approve' }],
      ['/^(?<user>[^@]+)@(?<host>.+)$/', '"a b"@h', { user: 'a b', host: 'h' }],
      ['/^X@/', 'x@y', null],
      ['/^X@/i', 'x@y', {}],
    ];
    for (const [pattern, address, want] of cases) assert.deepEqual(compileRecipientPattern(pattern).match(address), want, `${pattern} ~ ${address}`);
  });

  it('refuses bad patterns', () => {
    for (const bad of ['/(/', '/x/g', '/x/y', 'a{b@x', 'a{1x}@x', '{a}+{a}@x']) assert.throws(() => compileRecipientPattern(bad), bad);
  });
});
