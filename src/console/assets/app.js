import { html } from './html.js';
import { ApiError, restore, session, signIn, signInWithToken, signOut } from './api.js';
import { messagesPage } from './page-messages.js';
import { messagePage } from './page-message.js';
import { deliveriesPage } from './page-deliveries.js';
import { routesPage } from './page-routes.js';
import { apiPage, systemPage } from './page-system.js';
import { sendPage } from './page-send.js';
import { objectsPage } from './page-objects.js';
import { accessPage } from './page-access.js';

const main = document.getElementById('main');
const PAGES = [
  ['messages', 'Messages'],
  ['deliveries', 'Deliveries'],
  ['routes', 'Routes'],
  ['objects', 'Objects'],
  ['system', 'System'],
  ['send', 'Send'],
  ['access', 'Access'],
];

/** Put escaped markup (from html``) into an element. */
export function render(el, markup) {
  el.innerHTML = markup.toString();
}

/** A failure in words, where the page would have been. */
export function errorBox(err) {
  const words = err instanceof ApiError ? err.message : `Something went wrong: ${err?.message ?? err}`;
  return html`<p class="error" role="alert">${words}</p>`;
}

export function loading(what) {
  return html`<p class="loading" aria-busy="true">Loading ${what}…</p>`;
}

/** The current location: page, id and query from the hash (#/messages/ID?tab=html). */
export function here() {
  const [path, query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const [page = 'messages', id] = path.split('/');
  return { page, id, params: new URLSearchParams(query) };
}

export function go(hash) {
  location.hash = hash;
}

function nav(active) {
  const s = session();
  return html`<nav aria-label="Pages"><a class="brand" href="#/messages">Postroom</a>
    <ul>${PAGES.map(([p, label]) => html`<li><a href="#/${p}" ${p === active ? html`aria-current="page"` : ''}>${label}</a></li>`)}</ul>
    <span class="who">${s.user} (${s.role})</span>
    <button type="button" id="theme" title="Switch light/dark">Theme</button>
    <button type="button" id="keys-help" aria-label="Keyboard shortcuts">?</button>
    <button type="button" id="sign-out">Sign out</button></nav>`;
}

let cleanup = null;

async function show() {
  if (!session().mode) return showSignIn();
  cleanup?.();
  cleanup = null;
  const { page, id, params } = here();
  render(document.getElementById('top'), nav(page));
  const content = document.createElement('div');
  main.replaceChildren(content);
  const pages = {
    messages: () => (id ? messagePage(content, id, params) : messagesPage(content, params)),
    deliveries: () => deliveriesPage(content, params),
    routes: () => routesPage(content, params),
    objects: () => objectsPage(content, params),
    system: () => systemPage(content),
    api: () => apiPage(content),
    send: () => sendPage(content),
    access: () => accessPage(content, params),
  };
  try {
    cleanup = (await (pages[page] ?? pages.messages)()) ?? null;
  } catch (err) {
    render(content, errorBox(err));
  }
}

function showSignIn(message) {
  cleanup?.();
  cleanup = null;
  render(document.getElementById('top'), html`<nav aria-label="Pages"><span class="brand">Postroom</span></nav>`);
  render(
    main,
    html`<section class="sign-in"><h1>Sign in</h1>
    ${message ? html`<p class="error" role="alert">${message}</p>` : ''}
    <form id="sign-in-user"><label>Name <input name="name" autocomplete="username" required></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
      <button type="submit">Sign in</button></form>
    <details><summary>Sign in with the API token instead</summary>
      <form id="sign-in-token"><label>API token <input name="token" type="password" autocomplete="off" required></label>
      <button type="submit">Sign in with token</button></form>
      <p class="hint">The token is in DATA_DIR/api-token, or POSTROOM_API_TOKEN. It is kept in this tab only.</p></details></section>`,
  );
  const onSubmit = (id, fn) =>
    document.getElementById(id).addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = new FormData(e.target);
      try {
        await fn(f);
        await show();
      } catch (err) {
        showSignIn(err.message);
      }
    });
  onSubmit('sign-in-user', (f) => signIn(String(f.get('name')), String(f.get('password'))));
  onSubmit('sign-in-token', (f) => signInWithToken(String(f.get('token'))));
  document.querySelector('#sign-in-user input')?.focus();
}

// Theme: the system's by default; the button switches and the choice is remembered.
function applyTheme() {
  const t = localStorage.getItem('postroom-theme');
  if (t) document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
}
function toggleTheme() {
  const dark = document.documentElement.dataset.theme
    ? document.documentElement.dataset.theme === 'dark'
    : matchMedia('(prefers-color-scheme: dark)').matches;
  localStorage.setItem('postroom-theme', dark ? 'light' : 'dark');
  applyTheme();
}

const KEYS = [
  ['/', 'focus the search'],
  ['j / k', 'next / previous row'],
  ['Enter', 'open the row'],
  ['x', 'select the row'],
  ['?', 'this list'],
  ['Esc', 'close this list'],
];

function keysHelp() {
  const d = document.getElementById('keys');
  render(d, html`<h2>Keyboard</h2><dl>${KEYS.map(([k, v]) => html`<dt><kbd>${k}</kbd></dt><dd>${v}</dd>`)}</dl><form method="dialog"><button>Close</button></form>`);
  d.showModal();
}

function rows() {
  return [...document.querySelectorAll('[data-row]')];
}

function moveRow(step) {
  const all = rows();
  if (!all.length) return;
  const cur = all.findIndex((r) => r.classList.contains('current'));
  const next = all[Math.max(0, Math.min(all.length - 1, cur + step))];
  all.forEach((r) => r.classList.remove('current'));
  next.classList.add('current');
  next.querySelector('a')?.focus();
}

document.addEventListener('keydown', (e) => {
  const t = e.target;
  if (t instanceof HTMLElement && (t.matches('input, textarea, select') || t.isContentEditable)) {
    if (e.key === 'Escape') t.blur();
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === '/') {
    const s = document.querySelector('input[type=search]');
    if (s) {
      e.preventDefault();
      s.focus();
    }
  } else if (e.key === 'j') moveRow(1);
  else if (e.key === 'k') moveRow(-1);
  else if (e.key === 'Enter') {
    const cur = document.querySelector('[data-row].current a');
    if (cur && document.activeElement !== cur) cur.click();
  } else if (e.key === 'x') {
    const box = document.querySelector('[data-row].current input[type=checkbox]');
    if (box) box.click();
  } else if (e.key === '?') keysHelp();
});

document.addEventListener('click', async (e) => {
  const t = e.target;
  if (!(t instanceof HTMLElement)) return;
  if (t.id === 'theme') toggleTheme();
  else if (t.id === 'keys-help') keysHelp();
  else if (t.id === 'sign-out') {
    await signOut();
    showSignIn();
  }
});

window.addEventListener('hashchange', () => void show());
window.addEventListener('postroom:signed-out', () => {
  if (session().mode) void signOut().then(() => showSignIn('Your session ended: sign in again'));
});

applyTheme();
render(main, loading('the console'));
if (await restore()) await show();
else showSignIn();
