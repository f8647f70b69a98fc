import { html } from './html.js';
import { can, getJson, postJson } from './api.js';
import { errorBox, render } from './app.js';
import { when } from './format.js';

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
    <h4>Posts</h4><p>${posts.items.length} shown${posts.next ? ' (more)' : ''}.</p></section>`;
}

/** Groups with their moderation queue; folders, workflows and the tracker are reached through the API for now. */
export async function objectsPage(el) {
  const groups = await getJson('/api/v1/groups');
  const sections = await Promise.all(groups.items.map(groupSection));
  render(
    el,
    html`<h1>Objects</h1><h2>Groups</h2>${sections.length ? sections : html`<p class="empty">No groups. Create one with <code>postroom group create</code> or POST /api/v1/groups.</p>`}`,
  );
  el.addEventListener('click', async (e) => {
    const b = e.target;
    if (!(b instanceof HTMLButtonElement) || !(b.classList.contains('approve') || b.classList.contains('reject'))) return;
    b.disabled = true;
    try {
      await postJson(`/api/v1/groups/${b.dataset.group}/posts/${b.dataset.post}/${b.classList.contains('approve') ? 'approve' : 'reject'}`, undefined);
      b.closest('li').replaceChildren(document.createTextNode(b.classList.contains('approve') ? 'Approved: relaying' : 'Rejected'));
    } catch (err) {
      b.insertAdjacentHTML('afterend', errorBox(err).toString());
      b.disabled = false;
    }
  });
}
