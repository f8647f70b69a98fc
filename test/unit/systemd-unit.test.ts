import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/env.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const UNIT = path.join(root, 'deploy/postroom.service');
const ANALYZE = '/usr/bin/systemd-analyze';

/** key=value lines of the [Service] section (a key given twice keeps both). */
function service(text: string): Map<string, string[]> {
  const section = text.split(/^\[Service\]$/m)[1]!.split(/^\[/m)[0]!;
  const out = new Map<string, string[]>();
  for (const line of section.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

test('deploy/postroom.service passes systemd-analyze verify, with no warning', (t) => {
  if (!existsSync(ANALYZE)) {
    // CI has systemd installed (scripts/peers.sh): there a missing one is a broken machine, not a skip.
    assert.notEqual(process.env.CI, 'true', `${ANALYZE} is missing`);
    t.skip(`${ANALYZE} is missing (apt-get install systemd)`);
    return;
  }
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  // verify checks that ExecStart's binary exists: point it at this node and this checkout.
  const text = readFileSync(UNIT, 'utf8').replace(/^ExecStart=\S+ \S+/m, `ExecStart=${process.execPath} ${path.join(root, 'bin/postroom.js')}`);
  assert.notEqual(text, readFileSync(UNIT, 'utf8'), 'ExecStart was found and replaced');
  const file = path.join(tmp.dir, 'postroom.service');
  writeFileSync(file, text);
  const r = spawnSync(ANALYZE, ['verify', '--man=no', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  // Unknown keys and unparsable values are only warnings to verify (exit 0): each would be a
  // hardening option silently not applied.
  assert.equal(r.stderr.trim(), '');
});

test('deploy/postroom.service runs unprivileged, hardened, with only the port-25 capability', () => {
  const s = service(readFileSync(UNIT, 'utf8'));
  const one = (k: string) => {
    assert.equal(s.get(k)?.length, 1, `${k}= once`);
    return s.get(k)![0];
  };
  assert.equal(one('Type'), 'simple');
  assert.equal(one('User'), 'postroom');
  assert.equal(one('ProtectSystem'), 'strict');
  assert.equal(one('ProtectHome'), 'yes');
  assert.equal(one('PrivateTmp'), 'yes');
  assert.equal(one('NoNewPrivileges'), 'yes');
  assert.equal(one('ReadWritePaths'), '/var/lib/postroom');
  assert.equal(one('CapabilityBoundingSet'), 'CAP_NET_BIND_SERVICE');
  assert.equal(one('AmbientCapabilities'), 'CAP_NET_BIND_SERVICE');
  assert.equal(one('Restart'), 'on-failure');
  assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.match(one('ExecStart')!, / serve --config \/etc\/postroom\/postroom\.yaml$/);
  assert.equal(one('EnvironmentFile'), '/etc/postroom/postroom.env', 'where postroom init puts the token');
});
