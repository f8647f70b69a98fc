import { html } from './html.js';
import { can, getJson, postJson, watchMessages } from './api.js';
import { errorBox, loading, render } from './app.js';
import { bytes, sender, status, when } from './format.js';

function row(m) {
  return html`<tr data-row data-id="${m.id}">
    <td><input type="checkbox" name="select" value="${m.id}" aria-label="Select message ${m.subject ?? m.id}"></td>
    <td>${when(m.receivedAt)}</td>
    <td class="addr">${sender(m)}</td>
    <td class="addr">${m.rcptTo.join(', ')}</td>
    <td><a href="#/messages/${m.id}">${m.subject || html`<span class="muted">(no subject)</span>`}</a></td>
    <td class="num">${bytes(m.size)}</td>
    <td>${status(m.status)}${m.parseStatus === 'raw' ? html` ${status('raw')}` : ''}</td></tr>`;
}

const HELP = 'from: to: rcpt: subject: message-id: status: route: ingress: has:attachment before: after: larger: smaller:, free text, -term negates';

/** Messages newest first, searched with the API's syntax, new mail live. */
export async function messagesPage(el, params) {
  const q = params.get('q') ?? '';
  render(
    el,
    html`<h1>Messages</h1>
    <form id="search" role="search"><label class="sr-only" for="q">Search messages</label>
      <input type="search" id="q" name="q" value="${q}" placeholder="Search: from:alice has:attachment -status:delivered" aria-describedby="q-help">
      <button type="submit">Search</button> <span id="live" class="live" role="status" aria-live="polite"></span></form>
    <p id="q-help" class="hint">${HELP}</p>
    <div id="bulk" class="bulk" hidden><span id="bulk-count"></span>
      ${can('operator') ? html`<button type="button" id="bulk-replay">Replay deliveries of selected</button>` : ''}
      <button type="button" id="bulk-clear">Clear selection</button></div>
    <div id="list">${loading('messages')}</div>`,
  );
  el.querySelector('#search').addEventListener('submit', (e) => {
    e.preventDefault();
    const v = String(new FormData(e.target).get('q') ?? '').trim();
    location.hash = v ? `#/messages?q=${encodeURIComponent(v)}` : '#/messages';
  });
  const list = el.querySelector('#list');
  const qs = (cursor) => {
    const p = new URLSearchParams({ limit: '50' });
    if (q) p.set('q', q);
    if (cursor) p.set('cursor', cursor);
    return `/api/v1/messages?${p}`;
  };
  // A search page may come back short (the API reads a bounded window per request): follow
  // the cursor for up to 3 s to fill a screen, then let the operator ask for more.
  const fetchFilled = async (cursor, have = 0) => {
    let got = await getJson(qs(cursor));
    const t0 = performance.now();
    while (q && have + got.items.length < 50 && got.nextCursor && performance.now() - t0 < 3000) {
      const next = await getJson(qs(got.nextCursor));
      got = { items: [...got.items, ...next.items], nextCursor: next.nextCursor };
    }
    return got;
  };
  let page;
  try {
    page = await fetchFilled();
  } catch (err) {
    render(list, errorBox(err));
    return;
  }
  const newest = page.items[0]?.id;
  const draw = () => {
    if (!page.items.length) {
      render(
        list,
        q
          ? html`<p class="empty">No message matches <code>${q}</code>${page.nextCursor ? ' among the newest' : ''}. Try fewer terms, or <a href="#/messages">show all</a>.</p>
            ${page.nextCursor ? html`<p><button type="button" id="more">Search older mail</button></p>` : ''}`
          : html`<p class="empty">No mail yet: send one with <code>swaks --server ${location.hostname}:25 --to someone@your.domain</code>, or <a href="#/send">send a test message</a> from here.</p>`,
      );
    } else {
      render(
        list,
        html`<div class="scroll"><table class="messages"><caption class="sr-only">Messages, newest first</caption><thead><tr>
        <th scope="col"><input type="checkbox" id="select-all" aria-label="Select all shown"></th><th scope="col">Received</th><th scope="col">From</th>
        <th scope="col">To</th><th scope="col">Subject</th><th scope="col" class="num">Size</th><th scope="col">Status</th></tr></thead>
        <tbody id="rows">${page.items.map(row)}</tbody></table></div>
        ${page.nextCursor ? html`<p><button type="button" id="more">${q ? 'Search older mail' : 'Older messages'}</button></p>` : ''}`,
      );
    }
  };
  draw();
  const tbody = () => list.querySelector('#rows');
  const selected = () => [...list.querySelectorAll('input[name=select]:checked')].map((b) => b.value);
  const updateBulk = () => {
    const n = selected().length;
    el.querySelector('#bulk').hidden = n === 0;
    el.querySelector('#bulk-count').textContent = `${n} selected`;
  };
  list.addEventListener('change', (e) => {
    if (e.target.id === 'select-all') list.querySelectorAll('input[name=select]').forEach((b) => (b.checked = e.target.checked));
    updateBulk();
  });
  list.addEventListener('click', async (e) => {
    if (e.target.id !== 'more') return;
    e.target.disabled = true;
    try {
      const wasEmpty = !page.items.length;
      const next = await fetchFilled(page.nextCursor);
      page = { items: [...page.items, ...next.items], nextCursor: next.nextCursor };
      if (wasEmpty) return draw();
      tbody().insertAdjacentHTML('beforeend', next.items.map((m) => row(m).toString()).join(''));
      if (!next.nextCursor) e.target.remove();
      else e.target.disabled = false;
    } catch (err) {
      e.target.insertAdjacentHTML('afterend', errorBox(err).toString());
    }
  });
  el.querySelector('#bulk-clear').addEventListener('click', () => {
    list.querySelectorAll('input[type=checkbox]').forEach((b) => (b.checked = false));
    updateBulk();
  });
  el.querySelector('#bulk-replay')?.addEventListener('click', async (e) => {
    const ids = selected();
    const button = e.target;
    button.disabled = true;
    let n = 0;
    try {
      // At most 50 messages are shown; their deliveries are replayed at the deliveries page's
      // pace (10 a second), so a selection does not burst at one target either.
      for (const id of ids) {
        const ds = await getJson(`/api/v1/deliveries?message=${id}&limit=500`);
        for (const d of ds.items) {
          const started = performance.now();
          await postJson(`/api/v1/deliveries/${d.id}/retry`, undefined);
          n++;
          el.querySelector('#bulk-count').textContent = `${n} deliveries replayed…`;
          const wait = 100 - (performance.now() - started);
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
      }
      el.querySelector('#bulk-count').textContent = `${n} deliveries replayed`;
    } catch (err) {
      el.querySelector('#bulk').insertAdjacentHTML('beforeend', errorBox(err).toString());
    } finally {
      button.disabled = false;
    }
  });

  const live = el.querySelector('#live');
  const words = { live: 'Live', reconnecting: 'Reconnecting…', polling: 'Live (polling)', offline: 'Offline: retrying' };
  return watchMessages({
    q,
    after: newest,
    onState: (s) => (live.textContent = words[s] ?? s),
    onMessage: (m) => {
      if (!page.items.length) {
        page.items.push(m);
        draw();
        return;
      }
      if (list.querySelector(`[data-id="${CSS.escape(m.id)}"]`)) return;
      page.items.unshift(m);
      tbody()?.insertAdjacentHTML('afterbegin', row(m).toString());
      tbody()?.firstElementChild?.classList.add('new');
    },
  });
}
