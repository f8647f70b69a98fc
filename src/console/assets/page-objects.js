import { html, safeUrl } from './html.js';
import { can, download, getJson, postJson } from './api.js';
import { errorBox, loading, render } from './app.js';
import { bytes, status, when } from './format.js';

async function groupSection(g) {
  const [members, held, posts] = await Promise.all([
    getJson(`/api/v1/groups/${g.id}/members`),
    getJson(`/api/v1/groups/${g.id}/posts?status=held`),
    getJson(`/api/v1/groups/${g.id}/posts`),
  ]);
  return html`<section class="group" data-group="${g.id}"><h3>${g.name} <code>${g.address}</code> <span class="muted">posting: ${g.posting}</span></h3>
    <h4>Members</h4>${members.items.length ? html`<div class="scroll"><table><caption class="sr-only">Members of ${g.name}</caption><thead><tr><th scope="col">Address</th><th scope="col">Delivery</th><th scope="col">Bounces</th></tr></thead><tbody>${members.items.map(
      (m) => html`<tr><td>${m.email}</td><td>${m.delivery ? 'on' : 'off'}${m.suspended ? ' (suspended)' : ''}</td><td>${m.bounces}</td></tr>`,
    )}</tbody></table></div>` : html`<p class="empty">No members yet.</p>`}
    <h4>Moderation queue</h4>${held.items.length ? html`<ul class="held">${held.items.map(
      (p) => html`<li data-post="${p.id}"><a href="#/messages/${p.message}">${p.subject ?? p.messageId ?? p.message}</a> from ${p.author ?? ''} ${when(p.postedAt)}
      ${can('operator') ? html`<button type="button" class="approve" data-group="${g.id}" data-post="${p.id}">Approve</button>
      <button type="button" class="reject" data-group="${g.id}" data-post="${p.id}">Reject</button>` : ''}</li>`,
    )}</ul>` : html`<p class="empty">Nothing held.</p>`}
    <h4>Posts by thread</h4>${threads(g, posts.items)}</section>`;
}

/** Posts grouped by thread (the first post's id), newest thread first: subject, count, last post, statuses. */
function threads(g, posts) {
  if (!posts.length) return html`<p class="empty">No posts yet: mail to <code>${g.address}</code> makes one.</p>`;
  const by = new Map();
  for (const p of posts) by.set(p.thread, [...(by.get(p.thread) ?? []), p]);
  const rows = [...by.values()]
    .map((ps) => ps.sort((a, b) => (a.postedAt < b.postedAt ? -1 : 1)))
    .sort((a, b) => (a[a.length - 1].postedAt < b[b.length - 1].postedAt ? 1 : -1));
  return html`<div class="scroll"><table><caption class="sr-only">Threads of ${g.name}</caption><thead><tr><th scope="col">Thread</th><th scope="col" class="num">Posts</th><th scope="col">Last post</th><th scope="col">Statuses</th></tr></thead><tbody>${rows.map(
    (ps) => html`<tr><td><a href="#/messages/${ps[0].message}">${ps[0].subject ?? ps[0].messageId ?? ps[0].message}</a></td><td class="num">${ps.length}</td>
    <td>${when(ps[ps.length - 1].postedAt)} ${ps[ps.length - 1].author ?? ''}</td><td>${[...new Set(ps.map((p) => p.status))].map((s) => html`${status(s)} `)}</td></tr>`,
  )}</tbody></table></div>`;
}

const SECTIONS = [
  ['groups', 'Groups'],
  ['folders', 'Folders'],
  ['workflows', 'Workflows'],
  ['tracker', 'Tracker'],
  ['mail', 'Mail accounts'],
];

function aclList(acl) {
  return acl.items.length ? html`<p>ACL: ${acl.items.map((g) => html`<code>${g.principal}</code>=<code>${g.permissions}</code> `)}</p>` : html`<p class="muted">ACL: no grants (nobody may file here by mail).</p>`;
}

async function groups() {
  const list = await getJson('/api/v1/groups');
  const sections = await Promise.all(list.items.map(groupSection));
  return sections.length ? html`${sections}` : html`<p class="empty">No groups. Create one with <code>postroom group create</code> or POST /api/v1/groups.</p>`;
}

async function folders() {
  const list = await getJson('/api/v1/folders');
  if (!list.items.length) return html`<p class="empty">No folders. Create one with <code>postroom folder create</code> or POST /api/v1/folders.</p>`;
  const parts = await Promise.all(
    list.items.map(async (f) => {
      const [docs, acl] = await Promise.all([getJson(`/api/v1/documents?folder=${f.id}&limit=50`), getJson(`/api/v1/objects/${f.id}/acl`)]);
      return html`<section><h3>${f.name} ${f.address ? html`<code>${f.address}</code>` : ''}</h3>${aclList(acl)}
      ${docs.items.length ? html`<div class="scroll"><table><caption class="sr-only">Documents in ${f.name}</caption><thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col" class="num">Size</th><th scope="col">Properties</th><th scope="col">Filed</th><th scope="col"><span class="sr-only">Download</span></th></tr></thead><tbody>${docs.items.map(
        (d) => html`<tr><td>${d.name}</td><td><code>${d.contentType}</code></td><td class="num">${bytes(d.size)}</td>
        <td>${d.properties.slice(0, 4).map((p) => html`<div><code>${p.name ?? ''}</code> ${String(p.value ?? '').slice(0, 80)}</div>`)}</td><td>${when(d.createdAt)}</td>
        <td><button type="button" class="download" data-url="${safeUrl(d.url)}" data-name="${d.name}" aria-label="Download ${d.name}">Download</button></td></tr>`,
      )}</tbody></table></div>` : html`<p class="muted">No documents yet.</p>`}</section>`;
    }),
  );
  return html`${parts}`;
}

async function workflows() {
  const list = await getJson('/api/v1/workflows');
  if (!list.items.length) return html`<p class="empty">No workflows. Create one with <code>postroom workflow create</code> or POST /api/v1/workflows.</p>`;
  const parts = await Promise.all(
    list.items.map(async (w) => {
      const [runs, acl] = await Promise.all([getJson(`/api/v1/processes?workflow=${w.id}&limit=20`), getJson(`/api/v1/objects/${w.id}/acl`)]);
      return html`<section><h3>${w.name} ${w.address ? html`<code>${w.address}</code>` : ''}</h3><p>Input <code>${w.input.type}</code>, action <code>${JSON.stringify(w.action)}</code></p>${aclList(acl)}
      ${runs.items.length ? html`<div class="scroll"><table><caption class="sr-only">Processes of ${w.name}</caption><thead><tr><th scope="col">Process</th><th scope="col">State</th><th scope="col">Input</th><th scope="col">Output</th><th scope="col">Exit code</th><th scope="col">Message</th></tr></thead><tbody>${runs.items.map(
        (p) => html`<tr><td>${p.id}</td><td>${status(p.state)}${p.status ? html` <span class="muted">${p.status}</span>` : ''}</td><td><code>${p.input.type ?? ''}</code> ${bytes(p.input.size)}</td>
        <td>${p.output ? html`<button type="button" class="download" data-url="/api/v1/documents/${p.output}/content" data-name="process-${p.id}-output" aria-label="Download the output of process ${p.id}">Output</button>` : ''}</td>
        <td>${p.exitCode ?? ''}</td><td>${p.message ? html`<a href="#/messages/${p.message}">${p.message}</a>` : ''}</td></tr>`,
      )}</tbody></table></div>` : html`<p class="muted">No runs yet.</p>`}</section>`;
    }),
  );
  return html`${parts}`;
}

async function tracker(params) {
  const id = params.get('wp');
  if (id) {
    const wp = await getJson(`/api/v1/tracker/work-packages/${encodeURIComponent(id)}`);
    return html`<p><a href="#/objects?tab=tracker">← Work packages</a></p><h3>#${wp.id} ${wp.subject} ${status(wp.status)}</h3>
    <ol class="timeline">${wp.journals.map(
      (j) => html`<li>${when(j.createdAt)} ${j.user ? j.user.name : 'Anonymous'}${j.message ? html` (from <a href="#/messages/${j.message}">mail</a>)` : ''}
      ${j.changes.length ? html`<ul>${j.changes.map((c) => html`<li><code>${c.field}</code>: ${c.old ?? '–'} → ${c.new ?? '–'}</li>`)}</ul>` : ''}
      ${j.notes ? html`<pre>${j.notes}</pre>` : ''}</li>`,
    )}</ol>`;
  }
  const list = await getJson('/api/v1/tracker/work-packages?limit=100');
  return list.items.length
    ? html`<div class="scroll"><table><caption class="sr-only">Work packages</caption><thead><tr><th scope="col">#</th><th scope="col">Subject</th><th scope="col">Status</th></tr></thead><tbody>${list.items.map(
        (w) => html`<tr data-row><td>${w.id}</td><td><a href="#/objects?tab=tracker&wp=${w.id}">${w.subject}</a></td><td>${w.status}</td></tr>`,
      )}</tbody></table></div>`
    : html`<p class="empty">No work packages. Mail to a tracker route makes them.</p>`;
}

async function mail() {
  const [accounts, folders] = await Promise.all([getJson('/api/v1/email/accounts'), getJson('/api/v1/email/folders')]);
  if (!accounts.items.length) return html`<p class="empty">No mail accounts. Add one with <code>postroom email account add</code> or POST /api/v1/email/accounts.</p>`;
  return html`${accounts.items.map((a) => {
    const own = folders.items.filter((f) => f.account === a.id);
    return html`<section><h3>${a.name} <span class="muted">${a.address ?? a.username}</span></h3>
    ${own.length ? html`<div class="scroll"><table><caption class="sr-only">Folders of ${a.name}</caption><thead><tr><th scope="col">Folder</th><th scope="col">Enabled</th><th scope="col">Last good poll</th><th scope="col">Last error</th><th scope="col">Kept</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead><tbody>${own.map(
      (f) => html`<tr><td><code>${f.path}</code></td><td>${f.enabled ? 'yes' : 'no'}${f.health.stale ? html` <span class="error">stale</span>` : ''}</td>
      <td>${when(f.health.lastOkAt)}</td><td class="reply">${f.health.lastError ? html`<span class="error">${f.health.lastError}</span> ${when(f.health.lastErrorAt)}` : ''}</td><td>${f.fetched}</td>
      <td>${can('operator') ? html`<button type="button" class="toggle-folder" data-id="${f.id}" data-verb="${f.enabled ? 'disable' : 'enable'}" aria-label="${f.enabled ? 'Disable' : 'Enable'} ${a.name} ${f.path}">${f.enabled ? 'Disable' : 'Enable'}</button>` : ''}</td></tr>`,
    )}</tbody></table></div>` : html`<p class="muted">No folders discovered yet.</p>`}</section>`;
  })}`;
}

/** Objects: groups with their moderation queue, folders and documents, workflows and their runs, the tracker, mail accounts. */
export async function objectsPage(el, params) {
  const tab = SECTIONS.some(([t]) => t === params.get('tab')) ? params.get('tab') : 'groups';
  render(
    el,
    html`<h1>Objects</h1><div role="tablist" aria-label="Kinds of object">${SECTIONS.map(
      ([t, label]) => html`<a role="tab" href="#/objects?tab=${t}" aria-selected="${t === tab ? 'true' : 'false'}" aria-controls="objects-panel">${label}</a>`,
    )}</div><div id="objects-panel" role="tabpanel">${loading(tab)}</div>`,
  );
  const panel = el.querySelector('#objects-panel');
  const show = async () => {
    try {
      render(panel, await { groups, folders, workflows, tracker, mail }[tab](params));
    } catch (err) {
      render(panel, errorBox(err));
    }
  };
  await show();
  el.addEventListener('click', async (e) => {
    const b = e.target;
    if (!(b instanceof HTMLButtonElement)) return;
    try {
      if (b.classList.contains('download')) await download(b.dataset.url, b.dataset.name);
      else if (b.classList.contains('toggle-folder')) {
        b.disabled = true;
        await postJson(`/api/v1/email/folders/${b.dataset.id}/${b.dataset.verb === 'enable' ? 'enable' : 'disable'}`, undefined);
        await show();
      } else if (b.classList.contains('approve') || b.classList.contains('reject')) {
        b.disabled = true;
        await postJson(`/api/v1/groups/${b.dataset.group}/posts/${b.dataset.post}/${b.classList.contains('approve') ? 'approve' : 'reject'}`, undefined);
        b.closest('li').replaceChildren(document.createTextNode(b.classList.contains('approve') ? 'Approved: relaying' : 'Rejected'));
      }
    } catch (err) {
      b.insertAdjacentHTML('afterend', errorBox(err).toString());
      b.disabled = false;
    }
  });
}
