import { html } from './html.js';

/** Sizes as people read them. */
export function bytes(n) {
  if (n == null) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** An instant as a <time> element: local time shown, the exact UTC on hover. */
export function when(iso) {
  if (!iso) return html`<span class="muted">–</span>`;
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  const shown = today ? d.toLocaleTimeString() : d.toLocaleString();
  return html`<time datetime="${iso}" title="${iso}">${shown}</time>`;
}

export function status(s) {
  return html`<span class="status status-${s}">${s}</span>`;
}

/** The sender as the list shows it: the From: header, else the envelope sender, else <>. */
export function sender(m) {
  return m.from || m.mailFrom || '<>';
}
