import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, validateConfig } from '../../src/config/load.js';

/** A config as an operator coming from the fax/SMS gateway writes it, through check-config's validation. */
function problemsOf(raw: unknown): string[] {
  try {
    validateConfig(raw);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    return e.problems;
  }
  return [];
}

const faxRoute = (match: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  routes: [{ name: 'fax', match, deliver: [{ spool: { dir: './spool', control: { to: { number: '<%number%>' } } } }], ...extra }],
});

describe("the fax gateway's config, checked", () => {
  it('accepts recipient and sender regexes in Python syntax, and their captures in templates', () => {
    assert.deepEqual(problemsOf(faxRoute({ recipient: '(?P<number>\\+?[\\d]+)@fax' })), []);
    assert.deepEqual(
      problemsOf(faxRoute({ recipient: '(?:(?P<name>[^/]+)/(?:(?P<company>[^/]+)/(?:(?P<dept>[^/]+)/)?)?)?(?P<number>[+i]?\\d+)@fax$' })),
      [],
    );
    assert.deepEqual(problemsOf(faxRoute({ recipient: '/(?P<number>\\d+)@fax/', sender: { allow: ['(?P<user>[a-z]+)@shop\\.example$'], deny: ['(?i).*@gsm$'] } })), []);
  });

  it('refuses what Python syntax cannot become, saying what', () => {
    const [p] = problemsOf(faxRoute({ recipient: '/(?P<number>\\d+)@fax/', sender: { deny: ['(?i:spam)@'] } }));
    assert.match(p, /^routes\[0\]\.match\.sender\.deny\[0\]: not a valid regex: scoped inline flags/);
    const [q] = problemsOf(faxRoute({ recipient: '(?P<number>\\d++)@fax' }));
    assert.match(q, /^routes\[0\]\.match\.recipient: possessive quantifier/);
  });

  it('validates the listener\'s client list as route lists are, taking comma-separated entries', () => {
    assert.deepEqual(problemsOf({ smtp: { clients: ['localhost, 127.0.0.1'] } }), []);
    assert.deepEqual(problemsOf({ smtp: { clients: ['localhost; 127.0.0.1'] } }), ["smtp.clients: not an IP, CIDR, range or host name: 'localhost; 127.0.0.1'"]);
    assert.deepEqual(problemsOf(faxRoute({ recipient: '(?P<number>\\d+)@fax', clients: ['10.0.0.1,, 10.0.0.2 '] })), []);
    assert.deepEqual(problemsOf({ smtp: { clients: [' , '] } }), ['smtp.clients: no client named']);
  });

  it('takes enabled: false on a route: validated, then left out', () => {
    assert.deepEqual(problemsOf(faxRoute({ recipient: '(?P<number>\\d+)@fax' }, { enabled: false })), []);
    assert.deepEqual(validateConfig(faxRoute({ recipient: '(?P<number>\\d+)@fax' }, { enabled: false })).routes, []);
    assert.match(problemsOf(faxRoute({ recipient: '(?P<number>\\d+)@fax', sender: { deny: ['(?P<'] } }, { enabled: false }))[0], /sender\.deny\[0\]/);
  });
});
