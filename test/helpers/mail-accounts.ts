import assert from 'node:assert/strict';
import type { Dovecot } from './dovecot.js';
import { waitFor } from './env.js';

type Api = (pathname: string, init?: RequestInit) => Promise<Response>;

/** JSON request against the API; asserts the status. */
export async function call<T = any>(api: Api, method: string, pathname: string, body?: unknown, status?: number): Promise<T> {
  const res = await api(pathname, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (status !== undefined) assert.equal(res.status, status, `${method} ${pathname}: ${text}`);
  else assert.ok(res.ok, `${method} ${pathname}: HTTP ${res.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Create a profile and an account on `dc` through the API; resolves with the account (and its discovered folders). */
export async function addDovecotAccount(
  api: Api,
  dc: Dovecot,
  opts: { protocol?: 'imap' | 'pop3'; password?: string; options?: Record<string, unknown>; address?: string } = {},
): Promise<{ id: string; folders: any[]; discovery: { ok: boolean; error: string | null } }> {
  const protocol = opts.protocol ?? 'imap';
  const profile = await call(api, 'POST', '/api/v1/email/profiles', {
    name: `dovecot-${protocol}-${Math.random().toString(36).slice(2)}`,
    protocol,
    host: dc.host,
    port: protocol === 'imap' ? dc.imapPort : dc.pop3Port,
    tls: 'none',
    options: opts.options ?? {},
  }, 201);
  return call(api, 'POST', '/api/v1/email/accounts', {
    profile: profile.id,
    name: `${dc.user}-${Math.random().toString(36).slice(2, 8)}`,
    username: dc.user,
    password: opts.password ?? dc.pass,
    address: opts.address ?? 'alice@example.org',
  }, 201);
}

/** Enable a folder with settings; waits until its watcher has polled once successfully. */
export async function enableFolder(api: Api, folderId: string, settings: Record<string, unknown> = {}, waitOk = true): Promise<any> {
  const before = await call(api, 'GET', `/api/v1/email/folders/${folderId}`);
  await call(api, 'PATCH', `/api/v1/email/folders/${folderId}`, { enabled: true, ...settings });
  if (!waitOk) return before;
  return waitFor(async () => {
    const f = await call(api, 'GET', `/api/v1/email/folders/${folderId}`);
    return f.health.lastOkAt && f.health.lastOkAt !== before.health.lastOkAt ? f : undefined;
  }, 'the folder to be polled', 15_000);
}

/** Every message kept from a folder (all pages). */
export async function folderMessages(api: Api, folderId: string): Promise<any[]> {
  const out: any[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: any[]; nextCursor: string | null } = await call(api, 'GET', `/api/v1/messages?folder=${folderId}&limit=500${cursor ? `&cursor=${cursor}` : ''}`);
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}
