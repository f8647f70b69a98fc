import { html } from './html.js';
import { can, getJson, postJson, request, session } from './api.js';
import { errorBox, loading, render } from './app.js';
import { when } from './format.js';

const ROLES = ['viewer', 'operator', 'admin'];

async function tokens() {
  const list = await getJson('/api/v1/tokens');
  return html`<section><h2>API tokens</h2>
    <p class="hint">For scripts: <code>Authorization: Bearer …</code>. A read token has viewer powers; a write token the role of its user. The value is shown once.</p>
    ${session().mode === 'session'
      ? html`<form id="token-add" class="filters"><label>What it is for <input name="name" required maxlength="100"></label>
        <label>Scope <select name="scope"><option>read</option><option>write</option></select></label><button type="submit">Make a token</button></form>`
      : html`<p class="muted">Tokens are made from a signed-in session (sign in as a user), or with <code>postroom tokens add</code>.</p>`}
    <div id="token-new" role="status" aria-live="polite"></div>
    ${list.items.length
      ? html`<div class="scroll"><table><caption class="sr-only">API tokens</caption><thead><tr><th scope="col">Name</th><th scope="col">User</th><th scope="col">Scope</th><th scope="col">Made</th><th scope="col">Last used</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead><tbody>${list.items.map(
          (t) => html`<tr><td>${t.name}</td><td>${t.user}</td><td>${t.scope}</td><td>${when(t.createdAt)}</td><td>${when(t.lastUsedAt)}</td>
          <td>${t.revokedAt ? html`<span class="muted">revoked ${when(t.revokedAt)}</span>` : html`<button type="button" class="revoke" data-id="${t.id}" aria-label="Revoke token ${t.name}">Revoke</button>`}</td></tr>`,
        )}</tbody></table></div>`
      : html`<p class="empty">No tokens yet.</p>`}</section>`;
}

async function users() {
  const list = await getJson('/api/v1/users');
  return html`<section><h2>Users</h2>
    <form id="user-add" class="filters"><label>Name <input name="name" required autocomplete="off" pattern="[A-Za-z0-9._@-]{1,64}"></label>
      <label>Role <select name="role">${ROLES.map((r) => html`<option>${r}</option>`)}</select></label>
      <label>Password <input name="password" type="password" required minlength="8" autocomplete="new-password"></label><button type="submit">Add user</button></form>
    <div class="scroll"><table><caption class="sr-only">Users</caption><thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Signs in</th><th scope="col">Since</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead><tbody>${list.items.map(
      (u) => html`<tr data-user="${u.name}"><td>${u.name}</td>
      <td><select class="role" data-name="${u.name}" aria-label="Role of ${u.name}">${ROLES.map((r) => html`<option ${r === u.role ? html`selected` : ''}>${r}</option>`)}</select></td>
      <td>${u.disabled ? html`<span class="error">disabled</span>` : 'yes'}</td><td>${when(u.createdAt)}</td>
      <td><button type="button" class="toggle-user" data-name="${u.name}" data-disabled="${u.disabled ? '0' : '1'}" aria-label="${u.disabled ? 'Enable' : 'Disable'} ${u.name}">${u.disabled ? 'Enable' : 'Disable'}</button></td></tr>`,
    )}</tbody></table></div></section>`;
}

async function audit(params) {
  const p = new URLSearchParams({ limit: '100' });
  for (const k of ['actor', 'action']) if (params.get(k)) p.set(k, params.get(k));
  const list = await getJson(`/api/v1/audit?${p}`);
  return html`<section><h2>Audit log</h2>
    <form id="audit-filter" class="filters"><label>Who <input name="actor" value="${params.get('actor') ?? ''}"></label>
      <label>Action <input name="action" value="${params.get('action') ?? ''}" placeholder="delivery.replay"></label><button type="submit">Show</button></form>
    ${list.items.length
      ? html`<div class="scroll"><table class="audit"><caption class="sr-only">Audit log, newest first</caption><thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">Object</th><th scope="col">Detail</th><th scope="col">From</th></tr></thead><tbody>${list.items.map(
          (e) => html`<tr><td>${when(e.at)}</td><td>${e.actor}</td><td><code>${e.action}</code></td><td>${e.object ?? ''}</td>
          <td><code class="params">${e.detail ? JSON.stringify(e.detail).slice(0, 300) : ''}</code></td><td>${e.ip ?? ''}</td></tr>`,
        )}</tbody></table></div>`
      : html`<p class="empty">Nothing recorded${params.get('actor') || params.get('action') ? ' for this filter' : ' yet'}.</p>`}</section>`;
}

/** Access: your API tokens; for admins also users (add, role, disable) and the audit log. */
export async function accessPage(el, params) {
  render(el, html`<h1>Access</h1><div id="access">${loading('access')}</div>`);
  const box = el.querySelector('#access');
  const show = async () => {
    try {
      const parts = [await tokens()];
      if (can('admin')) parts.push(await users(), await audit(params));
      render(box, html`${parts}`);
    } catch (err) {
      render(box, errorBox(err));
    }
  };
  await show();
  const say = (where, err) => where.insertAdjacentHTML('afterend', errorBox(err).toString());
  el.addEventListener('submit', async (e) => {
    const f = e.target;
    if (!(f instanceof HTMLFormElement)) return;
    e.preventDefault();
    const d = Object.fromEntries(new FormData(f));
    try {
      if (f.id === 'token-add') {
        const t = await postJson('/api/v1/tokens', { name: d.name, scope: d.scope });
        await show();
        render(el.querySelector('#token-new'), html`<p class="ok">Token <strong>${t.name}</strong>: <code id="token-value">${t.token}</code>. Copy it now: it is not shown again.</p>`);
      } else if (f.id === 'user-add') {
        await postJson('/api/v1/users', { name: d.name, role: d.role, password: d.password });
        await show();
      } else if (f.id === 'audit-filter') {
        const p = new URLSearchParams();
        for (const [k, v] of Object.entries(d)) if (v) p.set(k, String(v));
        location.hash = `#/access?${p}`;
      }
    } catch (err) {
      say(f, err);
    }
  });
  el.addEventListener('change', async (e) => {
    const s = e.target;
    if (!(s instanceof HTMLSelectElement) || !s.classList.contains('role')) return;
    try {
      // The select already shows the new role: nothing to redraw (a redraw would also clear half-filled forms).
      await postJson(`/api/v1/users/${encodeURIComponent(s.dataset.name)}`, { role: s.value }, { method: 'PATCH' });
    } catch (err) {
      say(s, err);
    }
  });
  el.addEventListener('click', async (e) => {
    const b = e.target;
    if (!(b instanceof HTMLButtonElement) || b.type === 'submit') return;
    try {
      b.disabled = true;
      if (b.classList.contains('revoke')) await request(`/api/v1/tokens/${encodeURIComponent(b.dataset.id)}`, { method: 'DELETE' });
      else if (b.classList.contains('toggle-user'))
        await postJson(`/api/v1/users/${encodeURIComponent(b.dataset.name)}`, { disabled: b.dataset.disabled === '1' }, { method: 'PATCH' });
      else return void (b.disabled = false);
      await show();
    } catch (err) {
      b.disabled = false;
      say(b, err);
    }
  });
}
