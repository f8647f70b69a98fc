import { html } from './html.js';
import { can, getJson, postJson } from './api.js';
import { errorBox, loading, render } from './app.js';
import { status, when } from './format.js';

const STATUSES = ['pending', 'failed', 'dead', 'done'];
// Replays of many deliveries go out at this pace, so retrying 10,000 dead letters does not
// flood the target they failed against.
const REPLAYS_PER_SECOND = 10;

function row(d) {
  return html`<tr data-row data-id="${d.id}">
    <td>${can('operator') ? html`<input type="checkbox" name="select" value="${d.id}" aria-label="Select delivery ${d.id}">` : ''}</td>
    <td><a href="#/messages/${d.messageId}">${d.messageId}</a></td><td><code>${d.route}</code></td><td>${d.kind}${d.destination ? ` → ${d.destination}` : ''}</td>
    <td>${status(d.status === 'pending' && d.attempts > 0 ? 'retrying' : d.status)}</td><td class="num">${d.attempts}</td><td>${when(d.nextAttemptAt)}</td><td class="reply">${d.lastError ?? ''}</td>
    <td>${can('operator') ? html`<button type="button" class="retry" data-id="${d.id}">Retry</button>` : ''}</td></tr>`;
}

/** Every delivery matching the filter, paged through the API (for "retry all matching"). */
async function allMatching(filter) {
  const ids = [];
  let cursor = null;
  do {
    const p = new URLSearchParams({ ...filter, limit: '500' });
    if (cursor) p.set('cursor', cursor);
    const page = await getJson(`/api/v1/deliveries?${p}`);
    ids.push(...page.items.map((d) => d.id));
    cursor = page.nextCursor;
  } while (cursor);
  return ids;
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
  for (const k of ['status', 'route', 'message']) if (params.get(k)) filter[k] = params.get(k);
  render(
    el,
    html`<h1>Deliveries</h1>
    <form id="filter" class="filters"><label>Status <select name="status"><option value="">any</option>${STATUSES.map(
      (s) => html`<option ${filter.status === s ? html`selected` : ''}>${s}</option>`,
    )}</select></label>
    <label>Route <input name="route" value="${filter.route ?? ''}"></label><button type="submit">Show</button></form>
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
        progress.textContent = 'Counting…';
        const ids = await allMatching(filter);
        if (!ids.length) return void (progress.textContent = 'Nothing matches');
        const secs = Math.ceil(ids.length / REPLAYS_PER_SECOND);
        if (!confirm(`Retry ${ids.length} deliveries? They are replayed ${REPLAYS_PER_SECOND} a second (about ${secs} s).`)) return void (progress.textContent = '');
        await replay(ids, (n) => (progress.textContent = `Replayed ${n} of ${ids.length}`));
        await load();
      }
    } catch (err) {
      progress.textContent = err.message;
    }
  });
}
