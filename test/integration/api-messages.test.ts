import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Envelope } from '../../src/core/message.js';
import { setStatus } from '../../src/store/messages.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function* once(b: Buffer): AsyncIterable<Uint8Array> {
  yield b;
}

function envelope(over: Partial<Envelope> = {}): Envelope {
  return { mailFrom: 'alice@example.org', rcptTo: ['inbox@postroom.test'], ingress: 'smtp', clientIp: '127.0.0.1', helo: 'client.example.org', receivedAt: new Date(), ...over };
}

function plain(subject: string, opts: { from?: string; id?: string } = {}): string {
  return [
    `From: ${opts.from ?? 'Alice <alice@example.org>'}`,
    'To: Inbox <inbox@postroom.test>',
    `Subject: ${subject}`,
    'Date: Tue, 06 Jan 2026 10:00:00 +0000',
    `Message-ID: <${opts.id ?? `${Math.random().toString(36).slice(2)}@example.org`}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Body of ${subject}`,
    '',
  ].join('\r\n');
}

// Hostile on purpose: a path, a bidi override that flips the extension, a quote and a CR/LF
// that would split the Content-Disposition header if copied into it verbatim.
const HOSTILE = '../../etc/evil\u202Egpj.exe"\r\nX-Injected: 1';
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201aa3d6b470000000049454e44ae426082', 'hex');
const PDF = Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n', 'latin1');

function rich(): string {
  const b64 = (b: Buffer) => b.toString('base64').replace(/.{1,76}/g, '$&\r\n');
  return [
    'From: Bob <bob@example.net>',
    'To: Inbox <inbox@postroom.test>, Other <other@postroom.test>',
    'Cc: Carol <carol@example.com>',
    'Subject: =?UTF-8?B?UmljaCDinIkgbWVzc2FnZQ==?=',
    'Date: Wed, 07 Jan 2026 11:00:00 +0100',
    'Message-ID: <rich-1@example.net>',
    'X-First: one',
    'X-Second: two',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="outer"',
    '',
    '--outer',
    'Content-Type: multipart/related; boundary="rel"',
    '',
    '--rel',
    'Content-Type: multipart/alternative; boundary="alt"',
    '',
    '--alt',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Hello in plain text.',
    '--alt',
    'Content-Type: text/html; charset=utf-8',
    '',
    '<html><body><p>Hello <b>HTML</b></p><img src="cid:logo@example.net"><script>alert(1)</script></body></html>',
    '--alt--',
    '--rel',
    'Content-Type: image/png',
    'Content-Transfer-Encoding: base64',
    'Content-ID: <logo@example.net>',
    'Content-Disposition: inline; filename="logo.png"',
    '',
    b64(PNG) + '--rel--',
    '--outer',
    'Content-Type: application/pdf',
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename*=UTF-8''${encodeURIComponent('Rechnung März.pdf')}`,
    '',
    b64(PDF) + '--outer',
    'Content-Type: application/octet-stream',
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename="=?UTF-8?B?${Buffer.from(HOSTILE).toString('base64')}?="`,
    '',
    b64(Buffer.from('MZ not really an exe')) + '--outer--',
    '',
  ].join('\r\n');
}

describe('HTTP API: messages', () => {
  let pr: TestPostroom;
  const ids: Record<string, string> = {};
  const raws: Record<string, Buffer> = {};

  async function keep(name: string, raw: string, env: Partial<Envelope> = {}): Promise<string> {
    const bytes = Buffer.from(raw);
    const m = await pr.intake.accept(envelope(env), once(bytes));
    ids[name] = m.id;
    raws[name] = bytes;
    return m.id;
  }

  before(async () => {
    pr = await startTestPostroom();
    await keep('jan', plain('January report'), { receivedAt: new Date('2026-01-15T12:00:00Z') });
    await keep('feb', plain('February REPORT', { from: 'Dave <dave@elsewhere.test>' }), {
      receivedAt: new Date('2026-02-15T12:00:00Z'),
      mailFrom: 'bounces@lists.elsewhere.test',
    });
    await keep('mar', plain('March notes'), { receivedAt: new Date('2026-03-15T12:00:00Z'), rcptTo: ['sales@postroom.test'], ingress: 'pipe' });
    await keep('rich', rich(), { receivedAt: new Date('2026-04-01T08:00:00Z'), mailFrom: 'bob@example.net', rcptTo: ['inbox@postroom.test', 'hidden-bcc@postroom.test'] });
    await pr.parser.idle();
    await setStatus(pr.db.kysely, ids.feb, 'delivered');
  });
  after(() => pr?.close());

  async function list(query: string): Promise<{ items: { id: string }[]; nextCursor: string | null }> {
    const res = await pr.api(`/api/v1/messages${query}`);
    assert.equal(res.status, 200, await res.clone().text());
    return res.json();
  }
  const idsOf = (page: { items: { id: string }[] }) => page.items.map((i) => i.id);

  test('lists every message newest first with its summary', async () => {
    const page = await list('');
    assert.deepEqual(idsOf(page), [ids.rich, ids.mar, ids.feb, ids.jan]);
    assert.equal(page.nextCursor, null);
    const jan = page.items.find((i) => i.id === ids.jan) as Record<string, unknown>;
    assert.equal(jan.subject, 'January report');
    assert.equal(jan.mailFrom, 'alice@example.org');
    assert.deepEqual(jan.rcptTo, ['inbox@postroom.test']);
    assert.equal(jan.size, raws.jan.length);
    assert.equal(jan.sha256, sha256(raws.jan));
    assert.equal(jan.status, 'received');
  });

  test('filters by since and until (received time, until exclusive)', async () => {
    assert.deepEqual(idsOf(await list('?since=2026-02-15T12:00:00Z')), [ids.rich, ids.mar, ids.feb]);
    assert.deepEqual(idsOf(await list('?until=2026-02-15T12:00:00Z')), [ids.jan]);
    assert.deepEqual(idsOf(await list('?since=2026-02-01&until=2026-03-31')), [ids.mar, ids.feb]);
  });

  test('filters by from (envelope sender or From: header), case-insensitive', async () => {
    assert.deepEqual(idsOf(await list('?from=DAVE@elsewhere')), [ids.feb]);
    assert.deepEqual(idsOf(await list('?from=bounces%40lists')), [ids.feb]);
    assert.deepEqual(idsOf(await list('?from=bob%40example.net')), [ids.rich]);
  });

  test('filters by rcpt on the envelope, Bcc recipients included', async () => {
    assert.deepEqual(idsOf(await list('?rcpt=sales%40postroom.test')), [ids.mar]);
    assert.deepEqual(idsOf(await list('?rcpt=hidden-bcc')), [ids.rich]);
  });

  test('filters by subject substring, case-insensitive, and treats % and _ literally', async () => {
    assert.deepEqual(idsOf(await list('?subject=report')), [ids.feb, ids.jan]);
    assert.deepEqual(idsOf(await list('?subject=%25')), []);
    assert.deepEqual(idsOf(await list('?subject=_')), []);
  });

  test('filters by status and by ingress, and combines filters with AND', async () => {
    assert.deepEqual(idsOf(await list('?status=delivered')), [ids.feb]);
    assert.deepEqual(idsOf(await list('?ingress=pipe')), [ids.mar]);
    assert.deepEqual(idsOf(await list('?subject=report&status=received')), [ids.jan]);
  });

  test('paginates with limit and an opaque cursor across pages, missing and repeating nothing', async () => {
    const extra: string[] = [];
    for (let i = 0; i < 5; i++) extra.push(await keep(`page${i}`, plain(`Paged ${i}`), { rcptTo: ['paging@postroom.test'] }));
    const seen: string[] = [];
    let cursor: string | null = null;
    const sizes: number[] = [];
    do {
      const page = await list(`?rcpt=paging&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      sizes.push(page.items.length);
      seen.push(...idsOf(page));
      cursor = page.nextCursor;
    } while (cursor);
    assert.deepEqual(sizes, [2, 2, 1]);
    assert.deepEqual(seen, [...extra].reverse());
    // Exactly a page's worth: the last full page says there is no more.
    const exact = await list('?rcpt=paging&limit=5');
    assert.equal(exact.items.length, 5);
    assert.equal(exact.nextCursor, null);
  });

  test('rejects a forged cursor and bad query values with 400 INVALID_REQUEST naming the field', async () => {
    for (const q of ['?cursor=not-a-cursor', '?limit=0', '?limit=501', '?status=bogus', '?since=yesterday-ish', '?unknown=1']) {
      const res = await pr.api(`/api/v1/messages${q}`);
      assert.equal(res.status, 400, q);
      assert.equal(res.headers.get('content-type'), 'application/problem+json');
      const p = (await res.json()) as Record<string, unknown>;
      assert.equal(p.code, 'INVALID_REQUEST', q);
      assert.match(String(p.detail), /query\./, q);
    }
  });

  test('shows one message: envelope, headers in order, addresses, decoded subject, parts', async () => {
    const res = await pr.api(`/api/v1/messages/${ids.rich}`);
    assert.equal(res.status, 200);
    const m = (await res.json()) as any;
    assert.equal(m.id, ids.rich);
    assert.deepEqual(m.envelope.rcptTo, ['inbox@postroom.test', 'hidden-bcc@postroom.test']);
    assert.equal(m.envelope.mailFrom, 'bob@example.net');
    assert.equal(m.envelope.helo, 'client.example.org');
    assert.equal(m.envelope.receivedAt, '2026-04-01T08:00:00.000Z');
    assert.equal(m.subject, 'Rich \u2709 message');
    assert.equal(m.size, raws.rich.length);
    assert.equal(m.sha256, sha256(raws.rich));
    assert.equal(m.status, 'received');
    assert.equal(m.messageId, '<rich-1@example.net>');
    assert.ok(m.date);
    assert.ok(m.parsedAt);
    const names = m.headers.map((h: [string, string]) => h[0]);
    assert.deepEqual(names.slice(0, 8), ['From', 'To', 'Cc', 'Subject', 'Date', 'Message-ID', 'X-First', 'X-Second']);
    assert.ok(m.addresses, 'addresses present once parsed');
    assert.match(JSON.stringify(m.addresses), /carol@example\.com/);
    const kinds = m.parts.map((p: { kind: string }) => p.kind).sort();
    assert.deepEqual(kinds, ['attachment', 'attachment', 'body', 'body', 'html', 'inline', 'text']);
    for (const p of m.parts) assert.match(p.url, new RegExp(`^/api/v1/messages/${ids.rich}/`));
  });

  test('serves /raw byte-exact: ?trace=0 is the bytes received, the default adds our trace header first', async () => {
    for (const name of ['jan', 'rich']) {
      const bare = await pr.api(`/api/v1/messages/${ids[name]}/raw?trace=0`);
      assert.equal(bare.status, 200);
      assert.equal(bare.headers.get('content-type'), 'message/rfc822');
      const bytes = Buffer.from(await bare.arrayBuffer());
      assert.equal(sha256(bytes), sha256(raws[name]));
      assert.equal(bare.headers.get('x-postroom-sha256'), sha256(raws[name]));

      const traced = await pr.api(`/api/v1/messages/${ids[name]}/raw`);
      const all = Buffer.from(await traced.arrayBuffer());
      assert.equal(Number(traced.headers.get('content-length')), all.length);
      const text = all.toString('latin1');
      assert.match(text, /^Received: from client\.example\.org \(\[127\.0\.0\.1\]\)\r\n\tby mx\.postroom\.test \(Postroom [0-9a-f]{12}\)/);
      const cut = all.length - raws[name].length;
      assert.equal(sha256(all.subarray(cut)), sha256(raws[name]), 'after the trace header come the bytes received');
      assert.match(all.subarray(0, cut).toString('latin1'), /^Received: [^]*\r\n$/);
    }
  });

  test('streams a large /raw byte-exact, and a client hanging up midway leaves the server serving', async () => {
    const line = 'y'.repeat(998) + '\r\n';
    const big = `From: a@example.org\r\nSubject: big\r\nMessage-ID: <big@example.org>\r\n\r\n${line.repeat(6000)}`;
    const id = await keep('big', big, { rcptTo: ['big@postroom.test'] });
    const res = await pr.api(`/api/v1/messages/${id}/raw?trace=0`);
    assert.equal(Number(res.headers.get('content-length')), raws.big.length);
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(raws.big));

    const ac = new AbortController();
    const partial = await pr.api(`/api/v1/messages/${id}/raw`, { signal: ac.signal });
    const reader = partial.body!.getReader();
    await reader.read();
    ac.abort();
    await assert.rejects(async () => {
      for (;;) if ((await reader.read()).done) break;
    });
    const again = await pr.api(`/api/v1/messages/${id}/raw?trace=0`);
    assert.equal(sha256(Buffer.from(await again.arrayBuffer())), sha256(raws.big));
  });

  test('answers HEAD on /raw with the length and type, without a body', async () => {
    const res = await pr.api(`/api/v1/messages/${ids.jan}/raw?trace=0`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'message/rfc822');
    assert.equal(Number(res.headers.get('content-length')), raws.jan.length);
    assert.equal((await res.arrayBuffer()).byteLength, 0);
  });

  test('serves /text as UTF-8 plain text', async () => {
    const res = await pr.api(`/api/v1/messages/${ids.rich}/text`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.match(await res.text(), /Hello in plain text\./);
  });

  test('serves /html under a CSP that blocks scripts and remote loads', async () => {
    const res = await pr.api(`/api/v1/messages/${ids.rich}/html`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.headers.get('content-security-policy'), "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; sandbox");
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.match(await res.text(), /Hello <b>HTML<\/b>/);
  });

  test('answers 404 problem JSON for a message without an HTML body', async () => {
    const res = await pr.api(`/api/v1/messages/${ids.jan}/html`);
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
    assert.equal(((await res.json()) as { code: string }).code, 'NOT_FOUND');
  });

  test('lists attachments and inline parts with sanitised names', async () => {
    const res = await pr.api(`/api/v1/messages/${ids.rich}/attachments`);
    assert.equal(res.status, 200);
    const { items } = (await res.json()) as { items: { kind: string; filename: string; originalFilename: string; contentType: string; size: number }[] };
    assert.deepEqual(items.map((i) => i.kind).sort(), ['attachment', 'attachment', 'inline']);
    const pdf = items.find((i) => i.contentType === 'application/pdf')!;
    assert.equal(pdf.filename, 'Rechnung März.pdf');
    assert.equal(pdf.size, PDF.length);
    const evil = items.find((i) => i.contentType === 'application/octet-stream')!;
    assert.equal(evil.originalFilename, HOSTILE);
    assert.doesNotMatch(evil.filename, /[/\\\r\n\u202E"]|\.\./);
  });

  test('serves an attachment by part id and by index, byte-identical, with RFC 6266 Content-Disposition', async () => {
    const { items } = (await (await pr.api(`/api/v1/messages/${ids.rich}/attachments`)).json()) as { items: { id: string; idx: number; contentType: string }[] };
    const pdf = items.find((i) => i.contentType === 'application/pdf')!;
    for (const ref of [pdf.id, String(pdf.idx)]) {
      const res = await pr.api(`/api/v1/messages/${ids.rich}/attachments/${ref}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/pdf');
      assert.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(PDF));
      assert.equal(
        res.headers.get('content-disposition'),
        `attachment; filename="Rechnung M_rz.pdf"; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf`,
      );
    }
  });

  test('a hostile attachment name comes out of Content-Disposition sanitised', async () => {
    const { items } = (await (await pr.api(`/api/v1/messages/${ids.rich}/attachments`)).json()) as { items: { id: string; contentType: string }[] };
    const evil = items.find((i) => i.contentType === 'application/octet-stream')!;
    const res = await pr.api(`/api/v1/messages/${ids.rich}/attachments/${evil.id}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-injected'), null, 'no header was smuggled in');
    const cd = res.headers.get('content-disposition')!;
    assert.match(cd, /^attachment; filename="[^"\\%/]*"/);
    assert.doesNotMatch(cd, /\.\.|\/|\\|[\r\n]|\u202E|%E2%80%AE/i);
    assert.equal(Buffer.from(await res.arrayBuffer()).toString(), 'MZ not really an exe');
  });

  test('serves an inline part by Content-ID, with or without angle brackets', async () => {
    for (const cid of ['logo@example.net', '<logo@example.net>']) {
      const res = await pr.api(`/api/v1/messages/${ids.rich}/inlines/${encodeURIComponent(cid)}`);
      assert.equal(res.status, 200, cid);
      assert.equal(res.headers.get('content-type'), 'image/png');
      assert.equal(res.headers.get('content-disposition'), 'inline; filename="logo.png"');
      assert.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(PNG));
    }
    const missing = await pr.api(`/api/v1/messages/${ids.rich}/inlines/nope@example.net`);
    assert.equal(missing.status, 404);
  });

  test('answers 404 problem JSON for unknown messages, parts and routes', async () => {
    for (const path of [
      '/api/v1/messages/0000000000zzzzzzzzzzzzzzzz',
      '/api/v1/messages/0000000000zzzzzzzzzzzzzzzz/raw',
      `/api/v1/messages/${ids.rich}/attachments/99`,
      `/api/v1/messages/${ids.jan}/text/extra`,
      '/api/v2/nothing',
    ]) {
      const res = await pr.api(path);
      assert.equal(res.status, 404, path);
      assert.equal(res.headers.get('content-type'), 'application/problem+json', path);
      const p = (await res.json()) as Record<string, unknown>;
      assert.equal(p.code, 'NOT_FOUND');
      assert.equal(p.status, 404);
      assert.equal(p.type, 'urn:postroom:error:not_found');
      assert.equal(p.instance, path);
    }
  });

  test('answers 400 problem JSON for an id that cannot be one of ours and for a malformed URL', async () => {
    for (const path of [
      '/api/v1/messages/..%2f..%2fetc',
      `/api/v1/messages/${'a'.repeat(65)}`,
      '/api/v1/messages/%E0%A4%A',
      // Short, long, or with letters base32 leaves out (i, l, o, u): well within [0-9a-z_-], yet not an id.
      '/api/v1/messages/abc',
      '/api/v1/messages/not-an-id',
      '/api/v1/messages/0000000000zzzzzzzzzzzzzzzzz/raw',
      '/api/v1/messages/0000000000zzzzzzzzzzzzzzzu/text',
      '/api/v1/deliveries/dlv_0000',
      '/api/v1/email/profiles/1',
    ]) {
      const res = await pr.api(path);
      assert.equal(res.status, 400, path);
      assert.equal(res.headers.get('content-type'), 'application/problem+json', path);
      assert.equal(((await res.json()) as { code: string }).code, 'INVALID_REQUEST', path);
    }
  });

  test('healthz answers without a token when the database answers', async () => {
    const res = await fetch(`${pr.baseUrl}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok', db: 'ok' });
  });

  test('metrics are Prometheus text counting the messages kept', async () => {
    const res = await pr.api('/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /^postroom_messages_total\{ingress="smtp",outcome="accepted"\} \d+$/m);
    assert.match(text, /^postroom_messages_parsed_total \d+$/m);
  });

  test('serves an OpenAPI 3.1 document naming every route', async () => {
    const res = await pr.api('/api/v1/openapi.json');
    assert.equal(res.status, 200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, any>> };
    assert.equal(doc.openapi, '3.1.0');
    for (const p of [
      '/healthz',
      '/metrics',
      '/api/v1/messages',
      '/api/v1/messages/{id}',
      '/api/v1/messages/{id}/raw',
      '/api/v1/messages/{id}/text',
      '/api/v1/messages/{id}/html',
      '/api/v1/messages/{id}/attachments',
      '/api/v1/messages/{id}/attachments/{part}',
      '/api/v1/messages/{id}/inlines/{cid}',
    ]) {
      assert.ok(doc.paths[p]?.get, `documents GET ${p}`);
    }
    const listParams = doc.paths['/api/v1/messages'].get.parameters.map((x: { name: string }) => x.name);
    assert.deepEqual(listParams, ['q', 'since', 'until', 'from', 'rcpt', 'subject', 'status', 'parse', 'ingress', 'account', 'folder', 'limit', 'cursor']);
    assert.deepEqual(doc.paths['/healthz'].get.security, []);
  });

  test('every operation in the OpenAPI document has its own operationId, and /dav (WebDAV) is described', async () => {
    const doc = (await (await pr.api('/api/v1/openapi.json')).json()) as { paths: Record<string, Record<string, any>> };
    const ids: string[] = [];
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'].includes(method)) {
          assert.match(String(op.operationId), /^[a-z]+[A-Z][A-Za-z0-9]*$/, `${method} ${p}`);
          ids.push(op.operationId);
        }
      }
      for (const [method, op] of Object.entries(item['x-webdav-methods'] ?? {})) ids.push(assert.ok((op as any).operationId, `${method} ${p}`) ?? (op as any).operationId);
    }
    assert.ok(ids.length > 50, String(ids.length));
    assert.equal(new Set(ids).size, ids.length, `duplicate operationIds: ${ids.filter((x, i) => ids.indexOf(x) !== i)}`);
    assert.equal(doc.paths['/api/v1/messages/{id}/raw'].get.operationId, 'getMessagesByIdRaw');
    for (const p of ['/dav', '/dav/{path}']) {
      const item = doc.paths[p];
      assert.ok(item?.get && item.options && item['x-webdav-methods']?.PROPFIND, `documents ${p}: ${JSON.stringify(Object.keys(item ?? {}))}`);
      assert.ok(item['x-webdav-methods'].PROPFIND.responses['207']);
      assert.deepEqual(item.get.security, [{ bearer: [] }, { basic: [] }]);
    }
  });

  test('docs/openapi.json is what the server serves (run `npm run openapi` after changing a route)', async () => {
    const served = await (await pr.api('/api/v1/openapi.json')).json();
    const file = JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8'));
    assert.deepEqual(file, served, 'docs/openapi.json is stale: run `npm run openapi`');
  });
});
