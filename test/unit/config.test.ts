import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig, validateConfig } from '../../src/config/load.js';
import { tempDir } from '../helpers/env.js';

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    return e.problems;
  }
  assert.fail('expected the config to be refused');
}

test('embedded defaults: SMTP on 127.0.0.1:2525, HTTP on 127.0.0.1:8025, data under ./data', () => {
  const c = validateConfig({});
  assert.deepEqual(c.smtp.listen, { host: '127.0.0.1', port: 2525 });
  assert.deepEqual(c.http.listen, { host: '127.0.0.1', port: 8025 });
  assert.equal(c.dataDir, path.resolve('./data'));
  assert.equal(c.smtp.maxMessageSize, 200 * 1024 * 1024);
  assert.deepEqual(c.smtp.domains, []);
  assert.equal(c.http.apiToken, undefined);
});

test('an unknown key is an error naming its full key path', () => {
  assert.deepEqual(problemsOf(() => validateConfig({ smtp: { maxMesageSize: '1MiB' } })), ['smtp.maxMesageSize: unknown key']);
  assert.deepEqual(problemsOf(() => validateConfig({ colour: 'blue' })), ['colour: unknown key']);
  assert.deepEqual(problemsOf(() => validateConfig({ smtp: { greetingDelay: { allowlisted: 0, other: 5 } } })), [
    'smtp.greetingDelay.other: unknown key',
  ]);
});

test('a wrong value names its key path, array indexes included', () => {
  const problems = problemsOf(() =>
    validateConfig({ smtp: { maxRecipients: -1, auth: { users: [{ username: 'a', password: 'plain' }] } } }),
  );
  assert.ok(problems.some((p) => p.startsWith('smtp.maxRecipients:')), problems.join('\n'));
  assert.ok(problems.some((p) => p.startsWith('smtp.auth.users[0].password:') && /scrypt/.test(p)), problems.join('\n'));
});

test('every problem is reported at once, not only the first', () => {
  const problems = problemsOf(() => validateConfig({ smtp: { listen: 'nowhere', bogus: 1 }, http: { maxUploadSize: 'lots' } }));
  assert.equal(problems.length, 3, problems.join('\n'));
});

test('sizes and durations read as written: 200MiB, 10 MB, 30s, 1h30m', () => {
  const c = validateConfig({
    smtp: { maxMessageSize: '10 MB', socketTimeout: '1h30m', greetingDelay: { others: '250ms' } },
    http: { maxUploadSize: '200MiB' },
    store: { commitWindow: 2 },
  });
  assert.equal(c.smtp.maxMessageSize, 10_000_000);
  assert.equal(c.http.maxUploadSize, 200 * 1024 * 1024);
  assert.equal(c.smtp.socketTimeout, 5_400_000);
  assert.equal(c.smtp.greetingDelay.others, 250);
  assert.equal(c.store.commitWindow, 2);
  assert.match(problemsOf(() => validateConfig({ smtp: { socketTimeout: '30 sec' } }))[0], /^smtp\.socketTimeout: not a duration/);
  assert.match(problemsOf(() => validateConfig({ smtp: { maxMessageSize: '5 parsecs' } }))[0], /^smtp\.maxMessageSize: not a size/);
});

test('listen addresses take host:port, IPv6 in brackets', () => {
  assert.deepEqual(validateConfig({ smtp: { listen: '[::1]:25' } }).smtp.listen, { host: '::1', port: 25 });
  assert.match(problemsOf(() => validateConfig({ http: { listen: '127.0.0.1:70000' } }))[0], /^http\.listen: not host:port/);
});

test('environment variables win over the file, whatever it says', () => {
  const tmp = tempDir();
  try {
    const file = path.join(tmp.dir, 'postroom.yaml');
    writeFileSync(
      file,
      ['dataDir: /from/file', 'smtp:', '  listen: 0.0.0.0:25', 'http:', '  listen: 0.0.0.0:80', '  apiToken: file-token-0123456789', ''].join('\n'),
    );
    const fromFile = loadConfig(file, {});
    assert.equal(fromFile.dataDir, '/from/file');
    assert.equal(fromFile.http.apiToken, 'file-token-0123456789');

    const c = loadConfig(file, {
      POSTROOM_DATA_DIR: path.join(tmp.dir, 'env-data'),
      POSTROOM_SMTP_LISTEN: '127.0.0.1:2626',
      POSTROOM_HTTP_LISTEN: '127.0.0.1:8026',
      POSTROOM_API_TOKEN: 'env-token-0123456789abcdef',
    });
    assert.equal(c.dataDir, path.join(tmp.dir, 'env-data'));
    assert.deepEqual(c.smtp.listen, { host: '127.0.0.1', port: 2626 });
    assert.deepEqual(c.http.listen, { host: '127.0.0.1', port: 8026 });
    assert.equal(c.http.apiToken, 'env-token-0123456789abcdef');
  } finally {
    tmp.cleanup();
  }
});

test('POSTROOM_CONFIG names the file when no file is given', () => {
  const tmp = tempDir();
  try {
    const file = path.join(tmp.dir, 'c.yaml');
    writeFileSync(file, 'smtp:\n  banner: From env config\n');
    assert.equal(loadConfig(undefined, { POSTROOM_CONFIG: file }).smtp.banner, 'From env config');
    assert.equal(loadConfig(undefined, {}).smtp.banner, 'Postroom ESMTP');
  } finally {
    tmp.cleanup();
  }
});

test('a file that is not YAML, not a mapping, or missing is a ConfigError naming the file', () => {
  const tmp = tempDir();
  try {
    const bad = path.join(tmp.dir, 'bad.yaml');
    writeFileSync(bad, 'smtp: [unclosed\n');
    assert.throws(() => loadConfig(bad, {}), (e: unknown) => e instanceof ConfigError && e.file === bad && /not valid YAML/.test(e.message));
    const list = path.join(tmp.dir, 'list.yaml');
    writeFileSync(list, '- a\n- b\n');
    assert.throws(() => loadConfig(list, {}), (e: unknown) => e instanceof ConfigError && /must be a mapping/.test(e.message));
    assert.throws(() => loadConfig(path.join(tmp.dir, 'missing.yaml'), {}), (e: unknown) => e instanceof ConfigError && /cannot read/.test(e.message));
    // An empty file is a valid config: every default.
    const empty = path.join(tmp.dir, 'empty.yaml');
    writeFileSync(empty, '');
    assert.equal(loadConfig(empty, {}).smtp.listen.port, 2525);
  } finally {
    tmp.cleanup();
  }
});
