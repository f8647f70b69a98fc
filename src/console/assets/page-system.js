import { html } from './html.js';
import { getJson, request } from './api.js';
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
    <p>Metrics for Prometheus: <a href="/metrics" id="metrics-link">/metrics</a> (scraped with the token)
      <button type="button" id="show-metrics">Show metrics here</button>. API: <a href="#/api">the OpenAPI description</a>,
      machine-readable at <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p>
    <pre id="metrics" hidden></pre>`,
  );
  // Fetched with the console's own credentials (a session cookie or the API token alike).
  el.querySelector('#show-metrics').addEventListener('click', async (e) => {
    const out = el.querySelector('#metrics');
    try {
      out.textContent = await (await request('/metrics')).text();
    } catch (err) {
      out.textContent = err.message;
    }
    out.hidden = false;
    e.target.remove();
  });
}

/** The OpenAPI document, readable: every operation by tag with its parameters and responses. */
export async function apiPage(el) {
  const doc = await getJson('/api/v1/openapi.json');
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item)) {
      if (typeof op !== 'object' || !op || !op.responses) continue;
      ops.push({ path, method: method.toUpperCase(), op, tag: op.tags?.[0] ?? 'other' });
    }
  }
  const tags = [...new Set(ops.map((o) => o.tag))];
  render(
    el,
    html`<h1>${doc.info?.title ?? 'API'} ${doc.info?.version ?? ''}</h1>
    <p class="hint">The same document as <code>/api/v1/openapi.json</code> (OpenAPI ${doc.openapi}), generated from the schemas that validate requests.</p>
    <nav aria-label="API sections"><ul class="toc">${tags.map((t) => html`<li><a href="#/api" data-jump="tag-${t}">${t}</a></li>`)}</ul></nav>
    ${tags.map(
      (t) => html`<section id="tag-${t}"><h2>${t}</h2>${ops.filter((o) => o.tag === t).map(
        (o) => html`<details class="op"><summary><code>${o.method} ${o.path}</code> ${o.op.summary ?? ''}</summary>
        ${o.op.description ? html`<p>${o.op.description}</p>` : ''}
        ${o.op.parameters?.length ? html`<div class="scroll"><table><caption>Parameters</caption><tbody>${o.op.parameters.map(
          (p) => html`<tr><th scope="row"><code>${p.name}</code></th><td>${p.in}${p.required ? ', required' : ''}</td><td>${p.description ?? p.schema?.description ?? ''}</td></tr>`,
        )}</tbody></table></div>` : ''}
        <p>Responses: ${Object.entries(o.op.responses).map(([code, r]) => html`<code>${code}</code> ${r.description ?? ''}; `)}</p></details>`,
      )}</section>`,
    )}`,
  );
  el.addEventListener('click', (e) => {
    const id = e.target instanceof HTMLElement ? e.target.dataset.jump : undefined;
    if (!id) return;
    e.preventDefault();
    document.getElementById(id)?.scrollIntoView();
  });
}
