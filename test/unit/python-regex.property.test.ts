import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compileRecipientPattern } from '../../src/routing/address.js';
import { compilePythonRegex, PythonRegexError, translatePythonRegex } from '../../src/routing/python-regex.js';
import { DEBIAN_PYTHON, requirePeer } from '../helpers/env.js';

/**
 * Regexes in Python's syntax, as the fax gateway's config holds them. Patterns are generated as
 * a small tree and written out twice, once in Python's syntax and once in JavaScript's: the
 * translation of the first must be the second. Then Python's own `re` (a real peer) and the
 * translation must agree on what a sample of them matches and captures.
 */

type Node =
  | { t: 'lit'; s: string }
  | { t: 'class'; s: string }
  | { t: 'group'; name: string; body: Node[] }
  | { t: 'nc'; body: Node[] }
  | { t: 'opt'; body: Node[] }
  | { t: 'ref'; name: string }
  | { t: 'alt'; a: Node[]; b: Node[] }
  | { t: 'q'; node: Node; q: string };

const LITERALS = ['a', 'b', 'x', '1', '7', '@', '/', '\\+', '\\.', '-', 'fax'];
const CLASSES = ['[\\d]', '[a-z]', '[^/]', '[+i]', '\\d', '\\w', '.'];
const QUANTS = ['?', '*', '+', '{1,2}', '{2}', '{,2}', '*?', '+?'];

/** A tree of up to `depth` levels whose group names are unique and backreferences point backwards. */
function tree(depth: number): fc.Arbitrary<Node[]> {
  const leaf: fc.Arbitrary<Node> = fc.oneof(
    fc.constantFrom(...LITERALS).map((s): Node => ({ t: 'lit', s })),
    fc.constantFrom(...CLASSES).map((s): Node => ({ t: 'class', s })),
  );
  if (depth === 0) return fc.array(leaf, { minLength: 1, maxLength: 4 });
  const inner = tree(depth - 1);
  const node: fc.Arbitrary<Node> = fc.oneof(
    { weight: 4, arbitrary: leaf },
    { weight: 2, arbitrary: inner.map((body): Node => ({ t: 'group', name: '', body })) },
    { weight: 1, arbitrary: inner.map((body): Node => ({ t: 'nc', body })) },
    { weight: 1, arbitrary: inner.map((body): Node => ({ t: 'opt', body })) },
    { weight: 1, arbitrary: fc.tuple(inner, inner).map(([a, b]): Node => ({ t: 'alt', a, b })) },
    { weight: 1, arbitrary: fc.constant<Node>({ t: 'ref', name: '' }) },
    { weight: 2, arbitrary: fc.tuple(leaf, fc.constantFrom(...QUANTS)).map(([n, q]): Node => ({ t: 'q', node: n, q })) },
  );
  return fc.array(node, { minLength: 1, maxLength: 4 });
}

/**
 * Name the groups n0, n1, … in order; a backreference takes the last group closed before it
 * that always takes part in a match (outside alternatives and optional parts), or becomes a
 * literal: to a group that did not take part, Python's backreference fails where JavaScript's
 * matches the empty string (docs/coming-from.md says so).
 */
function nameGroups(nodes: Node[]): Node[] {
  let next = 0;
  const closed: string[] = [];
  const walk = (ns: Node[], sure: boolean): Node[] =>
    ns.map((n) => {
      if (n.t === 'group') {
        const name = `n${next++}`;
        const body = walk(n.body, sure);
        if (sure) closed.push(name);
        return { ...n, name, body };
      }
      if (n.t === 'nc') return { ...n, body: walk(n.body, sure) };
      if (n.t === 'opt') return { ...n, body: walk(n.body, false) };
      if (n.t === 'alt') return { ...n, a: walk(n.a, false), b: walk(n.b, false) };
      if (n.t === 'ref') return closed.length ? { ...n, name: closed[closed.length - 1] } : { t: 'lit', s: 'z' };
      return n;
    });
  return walk(nodes, true);
}

function write(nodes: Node[], py: boolean): string {
  return nodes
    .map((n) => {
      switch (n.t) {
        case 'lit':
        case 'class':
          return n.s;
        case 'group':
          return `(?${py ? 'P' : ''}<${n.name}>${write(n.body, py)})`;
        case 'nc':
          return `(?:${write(n.body, py)})`;
        case 'opt':
          return `(?:${write(n.body, py)})?`;
        case 'alt':
          return `(?:${write(n.a, py)}|${write(n.b, py)})`;
        case 'ref':
          return py ? `(?P=${n.name})` : `\\k<${n.name}>`;
        case 'q': {
          const q = !py && n.q === '{,2}' ? '{0,2}' : n.q;
          return `(?:${write([n.node], py)})${q}`;
        }
      }
    })
    .join('');
}

const patterns = fc.tuple(tree(2), fc.boolean()).map(([t, flag]) => {
  const nodes = nameGroups(t);
  return { py: `${flag ? '(?i)' : ''}${write(nodes, true)}`, js: write(nodes, false), flags: flag ? 'i' : '' };
});

describe('regexes in Python syntax (fast-check)', { timeout: 120_000 }, () => {
  it('translates every generated Python pattern into the same pattern written in JavaScript', () => {
    fc.assert(
      fc.property(patterns, ({ py, js, flags }) => {
        assert.deepEqual(translatePythonRegex(py), { source: js, flags });
        compilePythonRegex(py); // compiles
      }),
      { numRuns: 2000 },
    );
  });

  it('leaves JavaScript syntax as it is', () => {
    fc.assert(
      fc.property(patterns, ({ js }) => {
        assert.equal(translatePythonRegex(js).source, js);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses what has no JavaScript equivalent, naming it, wherever it stands', () => {
    const untranslatable: Array<[string, RegExp]> = [
      ['(?i:a)', /scoped inline flags/],
      ['(?-i:a)', /scoped inline flags/],
      ['(?(n0)a|b)', /conditional group/],
      ['(?>a)', /atomic group/],
      ['a*+', /possessive quantifier/],
      ['a{2}+', /possessive quantifier/],
      ['(?x)', /inline flag|must start/],
      ['(?P>n0)', /unknown Python group/],
    ];
    fc.assert(
      fc.property(patterns, fc.constantFrom(...untranslatable), fc.nat(), ({ py }, [bad, why], at) => {
        // Insert at a place between two top-level pieces: never inside a class or an escape.
        const cut = at % (py.length + 1);
        const safe = /^(?:[^\\[(]|\\.)*$/.test(py.slice(0, cut)) ? cut : py.length;
        const src = py.slice(0, safe) + bad + py.slice(safe);
        assert.throws(() => compilePythonRegex(src), (e: unknown) => e instanceof PythonRegexError && why.test(e.message), src);
      }),
      { numRuns: 500 },
    );
  });

  it('for any text, either compiles or says why; never throws anything else', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        try {
          compilePythonRegex(s);
        } catch (e) {
          assert.ok(e instanceof PythonRegexError || e instanceof SyntaxError, String(e));
          assert.ok((e as Error).message.length > 0);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("matches and captures as Python's own re does (Debian's python3)", (t) => {
    if (!requirePeer(t, 'python3')) return;
    const inputs = fc.string({ unit: fc.constantFrom('a', 'b', 'x', 'A', '1', '7', '@', '/', '+', '.', '-', 'f', 'z'), maxLength: 12 });
    const cases = fc.sample(fc.tuple(patterns, fc.array(inputs, { minLength: 1, maxLength: 8 })), { numRuns: 300, seed: 42 });
    const py = spawnSync(
      DEBIAN_PYTHON,
      [
        '-c',
        'import json,re,sys\n' +
          'out=[]\n' +
          'for p,ss in json.load(sys.stdin):\n' +
          ' r=re.compile(p)\n' +
          ' out.append([(lambda m: None if m is None else [m.group(0), m.groupdict()])(r.search(s)) for s in ss])\n' +
          'print(json.dumps(out))',
      ],
      { input: JSON.stringify(cases.map(([p, ss]) => [p.py, ss])), encoding: 'utf8' },
    );
    assert.equal(py.status, 0, py.stderr);
    const want = JSON.parse(py.stdout) as Array<Array<[string, Record<string, string | null>] | null>>;
    cases.forEach(([p, ss], i) => {
      const re = compilePythonRegex(p.py);
      ss.forEach((s, j) => {
        const m = re.exec(s);
        const got = m ? [m[0], Object.fromEntries(Object.entries(m.groups ?? {}).map(([k, v]) => [k, v ?? null]))] : null;
        assert.deepEqual(got, want[i][j], `${p.py} on '${s}'`);
      });
    });
  });

  it("takes the fax gateway's recipient patterns as written, bare or in slashes", () => {
    const long = compileRecipientPattern('(?:(?P<name>[^/]+)/(?:(?P<company>[^/]+)/(?:(?P<dept>[^/]+)/)?)?)?(?P<number>[+i]?\\d+)@fax$');
    assert.deepEqual(long.captures, ['name', 'company', 'dept', 'number']);
    assert.deepEqual(long.match('"Jan Novak/ACME/Sales/+420123456789"@fax'), { name: 'Jan Novak', company: 'ACME', dept: 'Sales', number: '+420123456789' });
    assert.equal(long.match('x@fax.example'), null);
    const short = compileRecipientPattern('/(?P<number>\\+?[\\d]+)@fax/');
    assert.deepEqual(short.match('+420111@fax'), { number: '+420111' });
    // Bare, it is anchored at the start as Python's re.match: no number found inside a name.
    assert.equal(compileRecipientPattern('(?P<number>\\+?[\\d]+)@fax').match('abc123@fax'), null);
  });
});
