// Every request the console makes goes through here, to the same REST API everyone uses.
// Signed in with a session (POST /api/v1/session), the browser sends the HttpOnly cookie and we
// add x-csrf-token to state-changing requests. Signed in with the API token (the fallback
// for an admin without a user), it is kept in sessionStorage and sent as a bearer token.

const auth = { mode: null, csrf: null, token: null, user: null, role: null };

export function session() {
  return auth;
}

/** An API failure in words: the problem JSON's detail when there is one. */
export class ApiError extends Error {
  constructor(status, detail, code) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

function headersFor(method, extra) {
  const h = new Headers(extra ?? {});
  if (auth.mode === 'token' && auth.token) h.set('authorization', `Bearer ${auth.token}`);
  if (auth.mode === 'session' && auth.csrf && method !== 'GET' && method !== 'HEAD') h.set('x-csrf-token', auth.csrf);
  return h;
}

/** fetch against the API; throws ApiError with the server's words on a non-2xx answer. */
export async function request(path, { method = 'GET', json, body, headers, signal } = {}) {
  const h = headersFor(method, headers);
  if (json !== undefined) h.set('content-type', 'application/json');
  let res;
  try {
    res = await fetch(path, { method, headers: h, body: json !== undefined ? JSON.stringify(json) : body, credentials: 'same-origin', signal });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'Postroom cannot be reached (is the server running? is the network up?)', 'NETWORK');
  }
  if (res.status === 401 && auth.mode) window.dispatchEvent(new CustomEvent('postroom:signed-out'));
  if (!res.ok) {
    let detail = `${res.status} ${res.statusText}`;
    let code;
    try {
      const p = await res.json();
      detail = p.detail || p.title || detail;
      code = p.code;
    } catch {
      // not problem JSON: the status line says it
    }
    throw new ApiError(res.status, detail, code);
  }
  return res;
}

export async function getJson(path, opts) {
  return (await request(path, opts)).json();
}

export async function postJson(path, json, opts = {}) {
  const res = await request(path, { ...opts, method: opts.method ?? 'POST', json });
  return res.status === 204 ? null : res.json();
}

/** Who is signed in: a session cookie first, else a token kept from this tab's sign-in. */
export async function restore() {
  try {
    const res = await fetch('/api/v1/session', { credentials: 'same-origin' });
    if (res.ok) {
      const s = await res.json();
      Object.assign(auth, { mode: 'session', csrf: s.csrfToken, user: s.user?.name ?? s.user ?? null, role: s.role, token: null });
      return true;
    }
  } catch {
    // no session endpoint reachable: fall through to the token
  }
  const token = sessionStorage.getItem('postroom-token');
  if (token) return signInWithToken(token).then(() => true, () => false);
  return false;
}

export async function signIn(name, password) {
  const res = await fetch('/api/v1/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password }),
    credentials: 'same-origin',
  });
  if (!res.ok) {
    let detail = res.status === 404 ? 'This server has no user accounts: sign in with the API token' : 'Wrong name or password';
    try {
      const p = await res.json();
      if (res.status !== 404) detail = p.detail || detail;
    } catch {
      // keep the words above
    }
    throw new ApiError(res.status, detail);
  }
  const s = await res.json();
  Object.assign(auth, { mode: 'session', csrf: s.csrfToken, user: s.user?.name ?? s.user ?? name, role: s.role, token: null });
}

export async function signInWithToken(token) {
  const res = await fetch('/api/v1/messages?limit=1', { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new ApiError(res.status, res.status === 401 ? 'That is not the API token' : `Sign-in failed: HTTP ${res.status}`);
  sessionStorage.setItem('postroom-token', token);
  Object.assign(auth, { mode: 'token', token, user: 'API token', role: 'admin', csrf: null });
}

export async function signOut() {
  if (auth.mode === 'session') await request('/api/v1/session', { method: 'DELETE' }).catch(() => {});
  sessionStorage.removeItem('postroom-token');
  Object.assign(auth, { mode: null, csrf: null, token: null, user: null, role: null });
}

const RANK = { viewer: 0, operator: 1, admin: 2 };
/** Whether the signed-in role may do what needs `role` (the server refuses anyway; this hides the button). */
export function can(role) {
  return (RANK[auth.role] ?? -1) >= RANK[role];
}

/** Download bytes of the API under a name (fetched with our credentials, so it works for both sign-ins). */
export async function download(path, name) {
  const res = await request(path);
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * New-message events: SSE read through fetch (so a bearer token can be sent), reconnecting by
 * itself with the last id; after three failed streams (a proxy that buffers or blocks
 * text/event-stream) it polls the list every 5 s instead.
 */
export function watchMessages({ q, after, onMessage, onState }) {
  let last = after;
  let stopped = false;
  let failures = 0;
  let controller;
  const emit = (m) => {
    if (!last || m.id > last) last = m.id;
    onMessage(m);
  };
  async function stream() {
    controller = new AbortController();
    const params = new URLSearchParams();
    if (q) params.set('q', q);
    if (last) params.set('after', last);
    const res = await request(`/api/v1/messages/events?${params}`, { signal: controller.signal, headers: { accept: 'text/event-stream' } });
    if (!res.body) throw new Error('no stream');
    onState('live');
    failures = 0;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        if (data && /^event: message$/m.test(block)) emit(JSON.parse(data));
      }
    }
  }
  async function poll() {
    const params = new URLSearchParams({ limit: '50' });
    if (q) params.set('q', q);
    const page = await getJson(`/api/v1/messages?${params}`);
    for (const m of page.items.filter((x) => !last || x.id > last).reverse()) emit(m);
  }
  (async () => {
    while (!stopped) {
      if (failures < 3) {
        try {
          await stream();
        } catch (err) {
          if (stopped) return;
          if (err instanceof ApiError && err.status === 401) return;
        }
        if (stopped) return;
        failures++;
        onState(failures >= 3 ? 'polling' : 'reconnecting');
        await new Promise((r) => setTimeout(r, 2000));
      } else {
        try {
          await poll();
        } catch {
          onState('offline');
        }
        await new Promise((r) => setTimeout(r, 5000));
        // Try the stream again now and then: the proxy may have been fixed.
        if (Math.random() < 0.1) failures = 0;
      }
    }
  })();
  return () => {
    stopped = true;
    controller?.abort();
  };
}
