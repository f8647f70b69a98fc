import { html } from './html.js';
import { getJson } from './api.js';
import { errorBox, render } from './app.js';

function routeCard(r, i) {
  // Where it comes from: the config file (change it there, then reload) or the API (versioned).
  const source =
    r.source === 'api'
      ? html`<span class="source" data-source="api">API, version ${r.version} by ${r.updatedBy}, ${r.updatedAt}</span>`
      : html`<span class="source" data-source="file">config file</span>`;
  return html`<li><h3>${i + 1}. <code>${r.name}</code> <span class="muted">priority ${r.priority}${r.catchAll ? ', catch-all' : ''}${r.continue ? ', continues' : ''}</span> ${source}</h3>
    <p>Match: <code>${JSON.stringify(r.match)}</code></p>
    <p>Targets: ${r.deliver.map((d) => html`<code>${d.kind}</code> <code class="params">${JSON.stringify(d.params)}</code> `)}</p>
    <p>Retry: ${r.retry ? html`<code>${JSON.stringify(r.retry)}</code>` : 'the default (14 tries over about 3 days)'}</p></li>`;
}

function verdicts(res) {
  return html`<h3>Result ${res.contentChecked ? '' : html`<span class="muted">(envelope only: header and size conditions count as met)</span>`}</h3>
  <div class="scroll"><table id="test-result"><caption class="sr-only">Route test result</caption><thead><tr><th scope="col">Recipient</th><th scope="col">Taken by</th><th scope="col">Captures</th><th scope="col">Targets</th><th scope="col">RCPT reply</th><th scope="col">Not taken by</th></tr></thead>
  <tbody>${res.recipients.map(
    (r) => html`<tr><td><code>${r.recipient}</code></td><td>${r.routes.map((x) => html`<code class="route">${x.route}</code> `)}</td>
    <td>${r.routes.map((x) => html`<code>${JSON.stringify(x.captures)}</code> `)}</td>
    <td>${r.routes.map((x) => x.targets.map((t) => html`<code>${t.kind}</code> `))}</td>
    <td><code class="rcpt-reply">${r.rcptReply}</code></td>
    <td>${r.refusals.map((x) => html`<div><code>${x.route}</code>: ${x.reason}</div>`)}</td></tr>`,
  )}</tbody></table></div>`;
}

/** Routes in priority order, and the tester: what would happen, without sending anything. */
export async function routesPage(el, params) {
  const routes = await getJson('/api/v1/routes');
  render(
    el,
    html`<h1>Routes</h1>
    <section><h2>Route tester</h2><p class="hint">Nothing is sent or kept: this asks the router what it would do.</p>
    <form id="route-test" class="stack">
      <label>Sender (MAIL FROM) <input name="sender" placeholder="alice@example.org"></label>
      <label>Recipients, one per line or comma separated <textarea name="recipients" rows="2" placeholder="orders-42@your.domain"></textarea></label>
      <label>Client IP <input name="clientIp" placeholder="192.0.2.10"></label>
      <label>Or a stored message (id) <input name="message" value="${params.get('message') ?? ''}" placeholder="message id"></label>
      <button type="submit">Test</button></form><div id="result" aria-live="polite"></div></section>
    <section><h2>Routes in the order they are tried</h2>
    ${routes.items.length ? html`<ol class="routes">${routes.items.map(routeCard)}</ol>` : html`<p class="empty">No routes: mail is kept and routed nowhere. Add routes under <code>routes:</code> in the config file, or through the API (<code>POST /api/v1/routes</code>).</p>`}
    <p class="hint">Routes of the config file come first, then those managed through the API; see docs/routes.md.</p></section>`,
  );
  el.querySelector('#route-test').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const q = new URLSearchParams({ sender: String(f.get('sender') ?? '').trim() });
    for (const r of String(f.get('recipients') ?? '').split(/[\s,]+/).filter(Boolean)) q.append('recipient', r);
    for (const k of ['clientIp', 'message']) {
      const v = String(f.get(k) ?? '').trim();
      if (v) q.set(k, v);
    }
    const out = el.querySelector('#result');
    try {
      render(out, verdicts(await getJson(`/api/v1/routes/test?${q}`)));
    } catch (err) {
      render(out, errorBox(err));
    }
  });
}
