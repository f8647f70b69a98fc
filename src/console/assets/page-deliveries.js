import { html } from './html.js';
import { can, getJson, postJson } from './api.js';
import { errorBox, loading, render } from './app.js';
import { status, when } from './format.js';

const STATUSES = ['pending', 'failed', 'dead', 'done'];
// A selection (at most the 100 rows shown) is replayed from here at this pace; "all matching"
// is replayed by the server (POST /api/v1/deliveries/replay), which staggers due times at the
// same pace, so retrying 10,000 dead letters does not flood the target they failed against.
const REPLAYS_PER_SECOND = 10;

function row(d) {
  return html`<tr data-row data-id="${d.id}">
    <td>${can('operator') ? html`<input type="checkbox" name="select" value="${d.id}" aria-label="Select delivery ${d.id}">` : ''}</td>
    <td><a href="#/messages/${d.messageId}">${d.messageId}</a></td><td><code>${d.route}</code></td><td>${d.kind}${d.destination ? ` → ${d.destination}` : ''}</td>
    <td>${status(d.status === 'pending' && d.attempts > 0 ? 'retrying' : d.status)}</td><td class="num">${d.attempts}</td><td>${when(d.nextAttemptAt)}</td><td class="reply">${d.lastError ?? ''}</td>
    <td>${can('operator') ? html`<button type="button" class="retry" data-id="${d.id}">Retry</button>` : ''}</td></tr>`;
}

async function replay(ids, progress) {
  let done = 0;
  for (const id of ids) {
    const started = performance.now();
    await postJson(`/api/v1/deliveries/${id}/retry`, undefined);
    done++;
    progress(done);
    const wait = 1000 / REPLAYS_PER_SECOND - (performance.now() - started);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

/** The delivery queue by status and route; dead letters with their last error; retries. */
export async function deliveriesPage(el, params) {
  const filter = {};
  for (const k of ['status', 'route', 'target', 'error', 'message']) if (params.get(k)) filter[k] = params.get(k);
  render(
    el,
    html`<h1>Deliveries</h1>
    <form id="filter" class="filters"><label>Status <select name="status"><option value="">any</option>${STATUSES.map(
      (s) => html`<option ${filter.status === s ? html`selected` : ''}>${s}</option>`,
    )}</select></label>
    <label>Route <input name="route" value="${filter.route ?? ''}"></label>
    <label>Target kind <input name="target" value="${filter.target ?? ''}" placeholder="webhook"></label>
    <label>Last error contains <input name="error" value="${filter.error ?? ''}"></label><button type="submit">Show</button></form>
    ${can('operator') ? html`<p class="bulk"><button type="button" id="retry-selected">Retry selected</button>
      <button type="button" id="retry-matching">Retry all matching…</button> <span id="progress" role="status" aria-live="polite"></span></p>` : ''}
    <div id="list">${loading('deliveries')}</div>`,
  );
  el.querySelector('#filter').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const p = new URLSearchParams();
    for (const [k, v] of f) if (v) p.set(k, String(v));
    location.hash = `#/deliveries?${p}`;
  });
  const list = el.querySelector('#list');
  const progress = el.querySelector('#progress');
  const load = async () => {
    try {
      const page = await getJson(`/api/v1/deliveries?${new URLSearchParams({ ...filter, limit: '100' })}`);
      render(
        list,
        page.items.length
          ? html`<div class="scroll"><table><caption class="sr-only">Deliveries</caption><thead><tr><th scope="col"><span class="sr-only">Select</span></th><th scope="col">Message</th><th scope="col">Route</th><th scope="col">Target</th>
          <th scope="col">Status</th><th scope="col" class="num">Attempts</th><th scope="col">Next attempt</th><th scope="col">Last error</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>${page.items.map(row)}</tbody></table></div>${page.nextCursor ? html`<p class="hint">Showing the first 100; narrow the filter to see others.</p>` : ''}`
          : html`<p class="empty">No delivery ${filter.status ? `is ${filter.status}` : 'yet'}${filter.route ? ` on route ${filter.route}` : ''}. Deliveries appear once a route takes a message: see <a href="#/routes">Routes</a>.</p>`,
      );
    } catch (err) {
      render(list, errorBox(err));
    }
  };
  await load();
  el.addEventListener('click', async (e) => {
    const b = e.target;
    if (!(b instanceof HTMLButtonElement)) return;
    try {
      if (b.classList.contains('retry')) {
        b.disabled = true;
        await postJson(`/api/v1/deliveries/${b.dataset.id}/retry`, undefined);
        progress.textContent = 'Replayed 1 delivery';
        await load();
      } else if (b.id === 'retry-selected') {
        const ids = [...list.querySelectorAll('input[name=select]:checked')].map((x) => x.value);
        if (!ids.length) return void (progress.textContent = 'Select deliveries first');
        await replay(ids, (n) => (progress.textContent = `Replayed ${n} of ${ids.length}`));
        await load();
      } else if (b.id === 'retry-matching') {
        // Replayed by the server, by the same filter the list shows; the count first, then a confirmation.
        const status = filter.status || 'dead';
        if (status === 'pending') return void (progress.textContent = 'Pending deliveries are queued already: pick dead, failed or done');
        const { message: _m, ...rest } = filter;
        const body = { ...rest, status, perSecond: REPLAYS_PER_SECOND };
        progress.textContent = 'Counting…';
        const count = await postJson('/api/v1/deliveries/replay', { ...body, dryRun: true });
        if (!count.selected) return void (progress.textContent = `No ${status} delivery matches`);
        const secs = Math.ceil(count.selected / REPLAYS_PER_SECOND);
        const capped = count.selected < count.matched ? ` (of ${count.matched} matching; the rest stay)` : '';
        if (!confirm(`Retry ${count.selected} ${status} deliveries${capped}? They are replayed ${REPLAYS_PER_SECOND} a second (about ${secs} s).`))
          return void (progress.textContent = '');
        b.disabled = true;
        const r = await postJson('/api/v1/deliveries/replay', body);
        progress.textContent = `Replayed ${r.replayed} of ${r.matched} matching; the last is due ${r.lastDueAt ? new Date(r.lastDueAt).toLocaleTimeString() : 'now'}`;
        b.disabled = false;
        await load();
      }
    } catch (err) {
      progress.textContent = err.message;
    }
  });
}
