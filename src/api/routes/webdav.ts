import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { mailError, toProblem } from '../../core/errors.js';
import { safeEqual } from '../../core/passwords.js';
import { documentByName, searchDocuments, type DocumentRecord } from '../../domain/folders/documents.js';
import { listObjects, requireObject, type ObjectRecord } from '../../domain/objects/store.js';
import { useToken } from '../../store/api-tokens.js';
import { bearerToken, type Principal } from '../auth.js';
import { davWrites, type Resolved } from './webdav-write.js';
import { BYTES_CSP, safeMediaType } from '../content-headers.js';
import { PROBLEM_TYPE } from '../problem.js';
import type { ApiDeps } from '../deps.js';

/**
 * WebDAV (RFC 4918, class 1) over folders and documents, so a file manager, davfs2, cadaver
 * or `curl -X PROPFIND` can browse what mail filed, and write where the principal may
 * (webdav-write.ts: PUT, DELETE, MOVE, COPY, MKCOL). `/dav/` lists every top-level folder as
 * `/dav/<id>/`; below a folder, subfolders and documents go by name. PROPFIND takes Depth 0
 * or 1; Depth infinity (also implied by a missing Depth header, §9.1) is refused with
 * 403 propfind-finite-depth (§9.1, a whole tree in one answer is a denial of service).
 * Credentials: the API bearer token or a user's prt_ token, or HTTP Basic with either as the
 * password (any user name), which is what file managers can send.
 */

const DAV = '/dav';
/** What a principal that may only read can do (the Allow of a refused write, RFC 9110 §15.5.6). */
export const READ_ALLOW = 'OPTIONS, GET, HEAD, PROPFIND';
const ALLOW = `${READ_ALLOW}, PUT, DELETE, MOVE, COPY, MKCOL`;

/** XML 1.0 text: escape markup, drop characters XML cannot carry at all. */
function xml(s: string): string {
  return s
    .replace(/[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** An href from path segments, each percent-encoded (RFC 4918 §8.3). */
function href(segments: (string | number)[], collection: boolean): string {
  const p = segments.map((s) => encodeURIComponent(String(s))).join('/');
  return `${DAV}/${p}${p && collection ? '/' : ''}`;
}

function httpDate(iso: string): string {
  return new Date(iso).toUTCString();
}

function collectionResponse(h: string, name: string, o?: ObjectRecord): string {
  return (
    `<D:response><D:href>${xml(h)}</D:href><D:propstat><D:prop>` +
    `<D:displayname>${xml(name)}</D:displayname><D:resourcetype><D:collection/></D:resourcetype>` +
    (o ? `<D:creationdate>${xml(o.createdAt)}</D:creationdate><D:getlastmodified>${httpDate(o.updatedAt)}</D:getlastmodified>` : '') +
    `</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`
  );
}

function documentResponse(h: string, d: DocumentRecord): string {
  // Dead properties in their own namespaces: {urn:postroom:mail-header}subject → <p:subject xmlns:p="…">.
  const props = d.properties
    .filter((p) => /^[A-Za-z_][A-Za-z0-9._-]*$/.test(p.name))
    .map((p) => `<p:${p.name} xmlns:p="${xml(p.namespace)}">${xml(p.value)}</p:${p.name}>`)
    .join('');
  return (
    `<D:response><D:href>${xml(h)}</D:href><D:propstat><D:prop>` +
    `<D:displayname>${xml(d.name)}</D:displayname><D:resourcetype/>` +
    `<D:getcontentlength>${d.size}</D:getcontentlength><D:getcontenttype>${xml(safeMediaType(d.contentType))}</D:getcontenttype>` +
    `<D:getetag>"${d.sha256}"</D:getetag><D:creationdate>${xml(d.createdAt)}</D:creationdate>` +
    `<D:getlastmodified>${httpDate(d.updatedAt)}</D:getlastmodified>${props}` +
    `</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`
  );
}


/**
 * Bearer token, or Basic with the token as password: POSTROOM_API_TOKEN (constant-time compare;
 * the administrator) or any live user token (the user, with the token's scope). Every principal
 * reads; writes are decided per folder (webdav-write.ts).
 */
async function authorised(request: FastifyRequest, deps: ApiDeps): Promise<Principal | undefined> {
  let given = bearerToken(request);
  if (given === undefined) {
    const m = /^basic[ \t]+([A-Za-z0-9+/=]+)\s*$/i.exec(request.headers.authorization ?? '');
    if (!m) return undefined;
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    given = decoded.slice(colon + 1);
  }
  if (safeEqual(given, deps.token)) return { kind: 'admin-token', role: 'admin', scope: 'write' };
  const found = await useToken(deps.db, given);
  if (!found) return undefined;
  return { kind: 'token', user: found.user, role: found.token.scope === 'read' ? 'viewer' : found.user.role, scope: found.token.scope, tokenId: found.token.id };
}

/** The WebDAV routes. */
export async function webdavRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const db = deps.db.kysely;
  for (const m of ['PROPFIND', 'MOVE', 'COPY', 'MKCOL']) if (!app.supportedMethods.includes(m)) app.addHttpMethod(m, { hasBody: true });
  // Bodies reach the handlers as the request stream, whatever their type (this scope only): PUT
  // streams them into the blob store; PROPFIND's XML is read and dropped (we answer allprop).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  async function resolve(segments: string[]): Promise<Resolved> {
    if (!segments.length) return { kind: 'root' };
    const [first, ...rest] = segments;
    if (!/^\d{1,15}$/.test(first)) throw mailError('NOT_FOUND', `No folder ${first}`);
    let folder = await requireObject(db, Number(first), 'folder');
    const path = [first];
    for (let i = 0; i < rest.length; i++) {
      const name = rest[i];
      const sub = (await listObjects(db, { kind: 'folder', parent: folder.id, limit: 10_000 })).find((o) => o.name === name);
      if (sub) {
        folder = sub;
        path.push(name);
        continue;
      }
      const doc = i === rest.length - 1 ? await documentByName(db, folder.id, name) : undefined;
      if (!doc) throw mailError('NOT_FOUND', `No ${name} in folder ${folder.id}`);
      return { kind: 'document', doc, path: [...path, name] };
    }
    return { kind: 'folder', folder, path };
  }

  function segmentsOf(request: FastifyRequest): string[] {
    const raw = (request.params as { '*'?: string })['*'] ?? '';
    return raw.split('/').filter(Boolean);
  }

  async function propfind(request: FastifyRequest, reply: FastifyReply) {
    await discardBody(request);
    const depth = String(request.headers.depth ?? 'infinity').trim().toLowerCase();
    if (depth !== '0' && depth !== '1') {
      return reply
        .code(403)
        .type('application/xml; charset=utf-8')
        .send('<?xml version="1.0" encoding="utf-8"?>\n<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>\n');
    }
    const r = await resolve(segmentsOf(request));
    const out: string[] = [];
    if (r.kind === 'document') out.push(documentResponse(href(r.path, false), r.doc));
    else if (r.kind === 'root') {
      out.push(collectionResponse(`${DAV}/`, 'postroom'));
      if (depth === '1') {
        for (const f of await listObjects(db, { kind: 'folder', parent: null, limit: 10_000 })) out.push(collectionResponse(href([f.id], true), f.name, f));
      }
    } else {
      out.push(collectionResponse(href(r.path, true), r.folder.name, r.folder));
      if (depth === '1') {
        for (const f of await listObjects(db, { kind: 'folder', parent: r.folder.id, limit: 10_000 })) out.push(collectionResponse(href([...r.path, f.name], true), f.name, f));
        for (const d of await searchDocuments(db, { folder: r.folder.id, limit: 10_000 })) out.push(documentResponse(href([...r.path, d.name], false), d));
      }
    }
    const body = `<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">${out.join('')}</D:multistatus>\n`;
    return reply.code(207).type('application/xml; charset=utf-8').header('cache-control', 'no-store').send(body);
  }

  async function get(request: FastifyRequest, reply: FastifyReply) {
    const r = await resolve(segmentsOf(request));
    if (r.kind !== 'document') {
      // A collection has no body of its own; say what can be done with it.
      return reply.code(405).header('allow', 'OPTIONS, PROPFIND').send();
    }
    const body = request.method === 'HEAD' ? Readable.from([]) : await deps.blobs.open(r.doc.sha256);
    return reply
      .header('content-type', safeMediaType(r.doc.contentType))
      .header('content-length', String(r.doc.size))
      .header('etag', `"${r.doc.sha256}"`)
      .header('last-modified', httpDate(r.doc.updatedAt))
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', BYTES_CSP)
      .send(body);
  }

  const handler = (fn: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>) => async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.method === 'OPTIONS') return reply.code(200).header('dav', '1').header('allow', ALLOW).header('ms-author-via', 'DAV').send();
    const principal = await authorised(request, deps);
    // Set for the audit hook, which records every write that succeeded under this principal.
    request.principal = principal;
    if (!principal) {
      await discardBody(request);
      // Basic, not Bearer: the challenge a file manager answers by asking for a password.
      const problem = toProblem(mailError('UNAUTHORISED', 'WebDAV needs the API token: Authorization: Bearer <token>, or Basic with the token as password'), request.url);
      return reply
        .code(401)
        .header('www-authenticate', 'Basic realm="postroom", charset="UTF-8"')
        .header('cache-control', 'no-store')
        .type(PROBLEM_TYPE)
        .send(Buffer.from(JSON.stringify(problem)));
    }
    return fn(request, reply);
  };

  const writes = davWrites(deps, { resolve, segmentsOf, discardBody });
  // `public`: the bearer hook steps aside; these routes check Bearer or Basic themselves.
  for (const url of [DAV, `${DAV}/*`]) {
    for (const [method, fn] of Object.entries(writes)) {
      app.route({ method, url, config: { public: true, audit: `webdav.${method.toLowerCase()}` }, handler: handler(fn) });
    }
    app.route({ method: 'PROPFIND', url, config: { public: true }, handler: handler(propfind) });
    // GET routes answer HEAD too (fastify's exposeHeadRoutes); get() sends no body for HEAD.
    app.route({ method: 'GET', url, config: { public: true }, handler: handler(get) });
    app.route({ method: 'OPTIONS', url, config: { public: true }, handler: handler(async () => undefined) });
  }
}

/**
 * Read and drop a request body nobody uses (a PROPFIND's XML, a refused PUT's bytes), at most
 * 64 MiB, so the client's request ends and the connection carries the answer.
 */
export async function discardBody(request: FastifyRequest): Promise<void> {
  const body = request.body as Readable | undefined;
  if (!body || typeof body.resume !== 'function' || body.readableEnded) return;
  let seen = 0;
  for await (const chunk of body) {
    seen += (chunk as Buffer).length;
    if (seen > 64 * 1024 * 1024) {
      body.destroy();
      return;
    }
  }
}

/**
 * /dav in the OpenAPI document, which cannot learn it from route specs (these routes are not
 * defineRoute's: WebDAV methods, Basic auth). PROPFIND is no OpenAPI 3.1 method: it is under
 * `x-webdav-methods`, shaped as OpenAPI 3.2's `additionalOperations`.
 */
export function webdavOpenApi(): Record<string, Record<string, unknown>> {
  const security = [{ bearer: [] }, { basic: [] }];
  const common = {
    401: { description: 'no or wrong token (code UNAUTHORISED); the challenge is WWW-Authenticate: Basic' },
    404: { description: 'no such folder or document (code NOT_FOUND)' },
  };
  // What every write may answer besides its success.
  const write = {
    ...common,
    405: { description: "this principal may not write here (lacks the folder's 'w' or 'd', or a read-scope token): Allow: OPTIONS, GET, HEAD, PROPFIND. Never 401 for good credentials, so a file manager does not ask for the password again" },
  };
  const davCopy = (what: 'move' | 'copy', suffix: string, needs: string) => ({
    operationId: `${what}Dav${suffix}`,
    summary: `${what === 'move' ? 'Move' : 'Copy'} a document to the Destination header's path (${needs}); Overwrite: F refuses an existing name`,
    tags: ['webdav'],
    security,
    parameters: [
      { name: 'Destination', in: 'header', required: true, schema: { type: 'string' }, description: 'a URL or path under /dav/' },
      { name: 'Overwrite', in: 'header', required: false, schema: { type: 'string', enum: ['T', 'F'], default: 'T' } },
    ],
    responses: { 201: { description: 'done, new at the destination' }, 204: { description: 'done, replacing a document there' }, 409: { description: 'no such destination folder' }, 412: { description: 'Overwrite: F and the name exists' }, ...write },
  });
  const ops = (suffix: string, where: string) => ({
    get: {
      operationId: `getDav${suffix}`,
      summary: `A document's bytes, with its ETag and Last-Modified (${where}); HEAD gives the headers alone`,
      tags: ['webdav'],
      security,
      responses: {
        200: { description: "the document's bytes, of its own media type", content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
        405: { description: 'a folder has no bytes of its own: PROPFIND it (Allow: OPTIONS, PROPFIND)' },
        ...common,
      },
    },
    options: {
      operationId: `optionsDav${suffix}`,
      summary: `What can be done here (${where}): DAV: 1, Allow: ${ALLOW}; no token needed`,
      tags: ['webdav'],
      security: [],
      responses: { 200: { description: 'the DAV and Allow headers, no body' } },
    },
    ...(suffix
      ? {
          put: {
            operationId: `putDav${suffix}`,
            summary: "Put a document into a folder under the path's last name: 201 new, 204 replaced (needs 'w' on the folder)",
            tags: ['webdav'],
            security,
            requestBody: { content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
            responses: { 201: { description: 'created' }, 204: { description: 'replaced (its properties stay)' }, 409: { description: 'no such folder to put it in (RFC 4918 §9.7.1)' }, ...write },
          },
          delete: {
            operationId: `deleteDav${suffix}`,
            summary: "Delete a document (needs 'd' on its folder) or a folder and everything in it (needs 'd' on that folder)",
            tags: ['webdav'],
            security,
            responses: { 204: { description: 'deleted' }, ...write },
          },
        }
      : {}),
    'x-webdav-methods': {
      ...(suffix
        ? {
            MOVE: davCopy('move', suffix, "needs 'd' on the source folder and 'w' on the destination's"),
            COPY: davCopy('copy', suffix, "needs 'w' on the destination's folder"),
            MKCOL: {
              operationId: `mkcolDav${suffix}`,
              summary: "Make a subfolder (needs 'w' on the parent folder)",
              tags: ['webdav'],
              security,
              responses: { 201: { description: 'created' }, 409: { description: 'no such parent folder' }, 415: { description: 'MKCOL takes no body' }, ...write },
            },
          }
        : {}),
      PROPFIND: {
        operationId: `propfindDav${suffix}`,
        summary: `Properties of a folder and its children (Depth: 1) or of itself (Depth: 0) (${where}) (RFC 4918 §9.1)`,
        tags: ['webdav'],
        security,
        parameters: [{ name: 'Depth', in: 'header', required: true, schema: { type: 'string', enum: ['0', '1'] } }],
        responses: {
          207: { description: 'a DAV:multistatus document', content: { 'application/xml': { schema: { type: 'string' } } } },
          403: { description: 'Depth: infinity, or no Depth header, which means it (DAV:propfind-finite-depth)' },
          ...common,
        },
      },
    },
  });
  return {
    [DAV]: {
      description: 'WebDAV (RFC 4918, class 1): every top-level folder as /dav/<id>/; reads for every token, writes below by the folder ACL',
      ...ops('', 'the root'),
    },
    [`${DAV}/{path}`]: {
      description: 'Below a folder id, subfolders and documents by name; path segments are percent-encoded and may be several',
      parameters: [{ name: 'path', in: 'path', required: true, description: 'the folder id, then names, separated by /', schema: { type: 'string' } }],
      ...ops('Path', 'a folder or document'),
    },
  };
}
