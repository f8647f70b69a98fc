import { meets, type Measurement } from './types.js';

const fmt = (n: number) => n.toLocaleString('en-US');

/** The results as a plain-text table: Postroom beside the baseline, the ratio, the target. */
export function formatTable(ms: Measurement[]): string {
  const rows = ms.map((m) => {
    const ok = meets(m);
    return [
      m.label,
      `${fmt(m.value)} ${m.unit}`,
      m.baseline ? `${fmt(m.baseline.value)} ${m.unit} (${m.baseline.name})` : '',
      m.baseline && m.baseline.value ? `${((m.value / m.baseline.value) * 100).toFixed(1)} %` : '',
      m.target ? `${m.target.op} ${fmt(m.target.value)} ${m.unit}` : '',
      ok === undefined ? '' : ok ? 'met' : 'MISSED',
      m.note ?? '',
    ];
  });
  const head = ['measurement', 'postroom', 'baseline', 'ratio', 'target', '', 'note'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 || i >= r.length - 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
