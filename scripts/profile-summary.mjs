// Summarise V8 CPU profiles (node --cpu-prof, or `npm run bench -- --profile`): self time per
// package or source file and per function, largest first. Usage: node scripts/profile-summary.mjs FILE...
import { readFileSync } from 'node:fs';
for (const f of process.argv.slice(2)) {
  const p = JSON.parse(readFileSync(f, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = p.timeDeltas; let total = 0;
  for (let i = 0; i < p.samples.length; i++) { const d = dt[i] ?? 0; total += d; self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + d); }
  const fn = new Map(), pkg = new Map();
  for (const [id, t] of self) {
    const n = byId.get(id); const cf = n.callFrame;
    const url = cf.url.replace(/^file:\/\//, '');
    const k = `${cf.functionName || '(anon)'} ${url.split('/').slice(-2).join('/')}:${cf.lineNumber}`;
    fn.set(k, (fn.get(k) ?? 0) + t);
    let g = url.includes('node_modules/') ? url.split('node_modules/').pop().split('/').slice(0, url.split('node_modules/').pop().startsWith('@') ? 2 : 1).join('/') : url.includes('/dist/') ? 'postroom:' + url.split('/dist/')[1] : url.startsWith('node:') ? url : (cf.functionName || url || '(native)');
    pkg.set(g, (pkg.get(g) ?? 0) + t);
  }
  console.log(`== ${f} total ${(total/1000).toFixed(0)} ms`);
  const top = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${(v/1000).toFixed(0).padStart(7)} ms ${(100*v/total).toFixed(1).padStart(5)}%  ${k}`).join('\n');
  console.log('-- by group\n' + top(pkg, 25)); console.log('-- by function\n' + top(fn, 30));
}
