import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { compileTemplate, strftime } from '../../src/routing/template.js';
import { DEBIAN_PYTHON, requirePeer } from '../helpers/env.js';

/**
 * Time expressions as the fax gateway's templates write them: every conversion an operator
 * uses must give what Python's time.strftime gave there (C locale), in the zone of the host.
 */
const CONVERSIONS = ['%x', '%X', '%c', '%d', '%m', '%y', '%Y', '%H', '%M', '%S', '%a', '%A', '%b', '%B', '%j', '%p', '%Z', '%z', '%%'];
const ZONES = ['UTC', 'Europe/Prague', 'America/New_York'];
// Winter and summer, morning and afternoon, a single-digit day (%c pads it with a space), a leap day.
const WHEN = [
  [2026, 1, 2, 3, 4, 5],
  [2026, 7, 19, 15, 30, 0],
  [2024, 2, 29, 23, 59, 59],
  [2025, 12, 31, 12, 0, 7],
];

describe('strftime conversions', () => {
  it("gives what Python's time.strftime gives, conversion by conversion (Debian's python3)", (t) => {
    if (!requirePeer(t, 'python3')) return;
    const saved = process.env.TZ;
    try {
      for (const tz of ZONES) {
        const py = spawnSync(
          DEBIAN_PYTHON,
          [
            '-c',
            'import json,sys,time\n' +
              'conv,when=json.load(sys.stdin)\n' +
              'print(json.dumps([[time.strftime(c,time.localtime(time.mktime(tuple(w)+(0,0,-1)))) for c in conv] for w in when]))',
          ],
          { input: JSON.stringify([CONVERSIONS, WHEN]), encoding: 'utf8', env: { ...process.env, TZ: tz, LC_ALL: 'C' } },
        );
        assert.equal(py.status, 0, py.stderr);
        const want = JSON.parse(py.stdout) as string[][];
        process.env.TZ = tz;
        WHEN.forEach(([y, mo, d, h, mi, s], i) => {
          const date = new Date(y, mo - 1, d, h, mi, s);
          CONVERSIONS.forEach((c, j) => assert.equal(strftime(date, c), want[i][j], `${c} at ${date.toString()} in ${tz}`));
        });
      }
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  it("formats the fax gateway's own example, '%x %X', in a template", () => {
    const t = compileTemplate('Sent <%now:%x %X%> by <%address%>');
    assert.equal(t.render({ vars: { address: 'orders@shop.example' }, now: new Date(2026, 0, 2, 3, 4, 5) }), 'Sent 01/02/26 03:04:05 by orders@shop.example');
  });

  it('is never evaluated: a format is text with conversions, nothing else', () => {
    assert.throws(() => compileTemplate("<%now:%Y${process.exit(1)}%Q%>"), /unknown time conversion '%Q'/);
    assert.equal(compileTemplate('<%now:${process.exit(1)} %Y%>').render({ vars: {}, now: new Date(2026, 0, 1) }), '${process.exit(1)} 2026');
  });
});
