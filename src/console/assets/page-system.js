import { html } from './html.js';
import { getJson } from './api.js';
import { render } from './app.js';
import { bytes } from './format.js';

/** A small bar chart of a series (inline SVG, no library). */
function chart(points, label) {
  const max = Math.max(1, ...points);
  const w = 4;
  return html`<svg class="chart" role="img" aria-label="${label}" viewBox="0 0 ${points.length * w} 40" preserveAspectRatio="none">${points.map(
    (v, i) => html`<rect x="${i * w}" y="${40 - (v / max) * 40}" width="${w - 1}" height="${(v / max) * 40}"></rect>`,
  )}</svg>`;
}

/** Listeners, store, queue, backlog, rates and version: GET /api/v1/system. */
export async function systemPage(el) {
  const s = await getJson('/api/v1/system');
  render(
    el,
    html`<h1>System</h1>
    <dl class="pairs">
      <dt>Version</dt><dd>${s.version}</dd>
      <dt>Listeners</dt><dd>${s.listeners.map((l) => html`<div>${l.kind} on <code>${l.address}</code></div>`)}</dd>
      <dt>Store</dt><dd>${s.store.backend}: ${s.store.messages} messages</dd>
      <dt>Queue</dt><dd>${Object.entries(s.deliveries).map(([k, v]) => html`<a href="#/deliveries?status=${k}">${k} ${v}</a> `)}</dd>
      <dt>Dead letters</dt><dd><a href="#/deliveries?status=dead">${s.deliveries.dead ?? 0}</a></dd>
      <dt>Parse backlog</dt><dd>${s.parseBacklog}</dd>
      <dt>Received, last hour</dt><dd>${s.lastHour.reduce((a, b) => a + b, 0)} messages ${chart(s.lastHour, 'messages received per minute over the last hour')}</dd>
      <dt>Memory</dt><dd>${bytes(s.rss)}</dd>
    </dl>
    <p>Metrics for Prometheus: <code>/metrics</code> (with the token). API: <a href="/api/v1/openapi.html">the OpenAPI description</a>.</p>`,
  );
}
