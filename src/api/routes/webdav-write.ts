import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { mailError, MailError, toProblem } from '../../core/errors.js';
import { hasPermissions } from '../../domain/acl.js';
import { copyOrMoveDocument, keepBytes, putDocument } from '../../domain/folders/document-writes.js';
import { createObject, deleteObject, isUniqueViolation, type ObjectRecord } from '../../domain/objects/store.js';
import type { Principal } from '../auth.js';
import { PROBLEM_TYPE } from '../problem.js';
import type { ApiDeps } from '../deps.js';
import type { DocumentRecord } from '../../domain/folders/documents.js';

/** What a /dav path names. */
export type Resolved = { kind: 'root' } | { kind: 'folder'; folder: ObjectRecord; path: string[] } | { kind: 'document'; doc: DocumentRecord; path: string[] };

/**
 * WebDAV writes (RFC 4918): PUT a document into a folder, DELETE, MOVE and COPY documents,
 * MKCOL a subfolder. Who may: the administrator (the API token, or an admin user's token of
 * write scope) anywhere; any other user by the folder's ACL entry for their name: `w` to put
 * into it (PUT, MKCOL, COPY or MOVE into it), `d` to take out of it (DELETE, MOVE away from it;
 * deleting a folder needs `d` on that folder). A read-scope token writes nothing.
 *
 * A write the principal may not make is 405 Method Not Allowed with `Allow: OPTIONS, GET,
 * HEAD, PROPFIND`, not 401 or 403: the credentials are right, and a file manager that gets 401
 * for a PUT asks for the password again and again (the loop OpenGroupware Coils users know),
 * while 405 tells it this resource does not take writes from it.
 */

interface Helpers {
  resolve(segments: string[]): Promise<Resolved>;
  segmentsOf(request: FastifyRequest): string[];
  discardBody(request: FastifyRequest): Promise<void>;
}

type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/** A name a client may give a document or folder: one path segment, no control characters. */
function checkName(name: string): string {
  if (!name || name.length > 255 || name === '.' || name === '..' || /[/\\\u0000-\u001f\u007f]/.test(name)) {
    throw mailError('INVALID_REQUEST', `'${name.slice(0, 80)}' is not a name a document or folder can have`);
  }
  return name;
}

/** The WebDAV write handlers, by method. */
export function davWrites(deps: ApiDeps, h: Helpers): Record<string, Handler> {
  const db = deps.db.kysely;

  async function may(p: Principal, folder: number, need: string): Promise<boolean> {
    if (p.scope !== 'write') return false;
    if (p.role === 'admin') return true;
    return !!p.user && (await hasPermissions(db, folder, p.user.name, need));
  }

  /** 405 with what this principal can do here, and why in a problem body. */
  async function refuse(request: FastifyRequest, reply: FastifyReply, why: string) {
    await h.discardBody(request);
    const problem = toProblem(mailError('FORBIDDEN', why), request.url);
    return reply.code(405).header('allow', 'OPTIONS, GET, HEAD, PROPFIND').header('cache-control', 'no-store').type(PROBLEM_TYPE).send(Buffer.from(JSON.stringify({ ...problem, status: 405 })));
  }

  const who = (p: Principal) => (p.user ? `user ${p.user.name}${p.scope === 'read' ? ' (read-scope token)' : ''}` : 'this token');

  /** The folder a new member would go into (RFC 4918 §9.7.1: a missing parent is 409 Conflict). */
  async function parentFolder(segments: string[]): Promise<ObjectRecord> {
    let r: Resolved;
    try {
      r = await h.resolve(segments);
    } catch (err) {
      if (err instanceof MailError && err.code === 'NOT_FOUND') throw mailError('CONFLICT', `no folder ${segments.join('/') || '/'} to put it in`);
      throw err;
    }
    if (r.kind !== 'folder') throw mailError('CONFLICT', r.kind === 'root' ? 'the root holds folders by id only; put documents into a folder' : `${segments.join('/')} is a document, not a folder`);
    return r.folder;
  }

  /** The Destination header of MOVE/COPY as segments under /dav/ (RFC 4918 §10.3). */
  function destination(request: FastifyRequest): string[] {
    const raw = request.headers.destination;
    if (typeof raw !== 'string' || !raw) throw mailError('INVALID_REQUEST', 'MOVE and COPY need a Destination header');
    let path: string;
    try {
      path = new URL(raw, `http://${request.headers.host ?? 'localhost'}`).pathname;
    } catch {
      throw mailError('INVALID_REQUEST', 'Destination is not a URL');
    }
    if (!path.startsWith('/dav/')) throw mailError('FORBIDDEN', 'Destination is outside /dav/ (RFC 4918 §9.8.5: 502 for another server)');
    try {
      return path.slice('/dav/'.length).split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      throw mailError('INVALID_REQUEST', 'Destination has bad percent-encoding');
    }
  }

  const principalOf = (request: FastifyRequest) => request.principal!;

  async function put(request: FastifyRequest, reply: FastifyReply) {
    const p = principalOf(request);
    const segments = h.segmentsOf(request);
    if (segments.length < 2) return refuse(request, reply, 'a folder takes no bytes: PUT a document into it, /dav/ID/NAME');
    const folder = await parentFolder(segments.slice(0, -1));
    const name = checkName(segments[segments.length - 1]);
    const clash = await db.selectFrom('objects').select('kind').where('parent', '=', folder.id).where('name', '=', name).executeTakeFirst();
    if (clash && clash.kind !== 'document') return refuse(request, reply, `${name} is a ${clash.kind}: it takes no bytes`);
    if (!(await may(p, folder.id, 'w'))) return refuse(request, reply, `${who(p)} may not write into folder ${folder.id} (needs 'w')`);
    const body = (request.body as Readable | undefined) ?? [];
    const staged = await deps.blobs.stage(body, { maxSize: deps.config.maxUploadSize });
    await keepBytes(deps.db, deps.blobs, staged);
    const type = String(request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    const contentType = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(type) ? type : 'application/octet-stream';
    const { doc, created } = await putDocument(deps.db, folder.id, name, { sha256: staged.sha256, size: staged.size, contentType });
    request.auditNote = { object: `document:${doc.id}`, detail: { folder: folder.id, name, size: doc.size } };
    return reply.code(created ? 201 : 204).header('etag', `"${doc.sha256}"`).send();
  }

  async function del(request: FastifyRequest, reply: FastifyReply) {
    const p = principalOf(request);
    await h.discardBody(request);
    const r = await h.resolve(h.segmentsOf(request));
    if (r.kind === 'root') return refuse(request, reply, 'the root cannot be deleted');
    const [target, from] = r.kind === 'document' ? [r.doc.id, r.doc.folder] : [r.folder.id, r.folder.id];
    if (!(await may(p, from, 'd'))) return refuse(request, reply, `${who(p)} may not delete from folder ${from} (needs 'd')`);
    await deleteObject(db, target);
    request.auditNote = { object: `${r.kind}:${target}` };
    return reply.code(204).send();
  }

  const copyOrMove = (move: boolean) => async (request: FastifyRequest, reply: FastifyReply) => {
    const p = principalOf(request);
    await h.discardBody(request);
    const r = await h.resolve(h.segmentsOf(request));
    if (r.kind !== 'document') return refuse(request, reply, 'only documents are copied or moved here; move folders with PATCH /api/v1/folders/ID');
    const dest = destination(request);
    if (dest.length < 2) throw mailError('CONFLICT', 'the destination must be a name inside a folder');
    const to = await parentFolder(dest.slice(0, -1));
    const name = checkName(dest[dest.length - 1]);
    if (move && !(await may(p, r.doc.folder, 'd'))) return refuse(request, reply, `${who(p)} may not move documents out of folder ${r.doc.folder} (needs 'd')`);
    if (!(await may(p, to.id, 'w'))) return refuse(request, reply, `${who(p)} may not write into folder ${to.id} (needs 'w')`);
    const overwrite = String(request.headers.overwrite ?? 'T').trim().toUpperCase() !== 'F';
    const { doc, replaced } = await copyOrMoveDocument(deps.db, r.doc, { folder: to.id, name, overwrite, move });
    request.auditNote = { object: `document:${doc.id}`, detail: { from: r.doc.id, folder: to.id, name } };
    return reply.code(replaced ? 204 : 201).send();
  };

  async function mkcol(request: FastifyRequest, reply: FastifyReply) {
    const p = principalOf(request);
    // RFC 4918 §9.3: a body we do not understand is 415.
    const hasBody = Number(request.headers['content-length'] ?? 0) > 0 || request.headers['transfer-encoding'] !== undefined;
    await h.discardBody(request);
    if (hasBody) throw mailError('UNSUPPORTED_MEDIA_TYPE', 'MKCOL takes no body');
    const segments = h.segmentsOf(request);
    if (segments.length < 2) return refuse(request, reply, 'top-level folders are made through the API (POST /api/v1/folders), which gives them their id');
    const parent = await parentFolder(segments.slice(0, -1));
    const name = checkName(segments[segments.length - 1]);
    if (await db.selectFrom('objects').select('id').where('parent', '=', parent.id).where('name', '=', name).executeTakeFirst()) {
      return refuse(request, reply, `${name} exists in folder ${parent.id}`);
    }
    if (!(await may(p, parent.id, 'w'))) return refuse(request, reply, `${who(p)} may not write into folder ${parent.id} (needs 'w')`);
    try {
      const f = await createObject(db, { kind: 'folder', name, parent: parent.id });
      request.auditNote = { object: `folder:${f.id}`, detail: { parent: parent.id, name } };
    } catch (err) {
      if (isUniqueViolation(err)) return refuse(request, reply, `${name} exists in folder ${parent.id}`);
      throw err;
    }
    return reply.code(201).send();
  }

  return { PUT: put, DELETE: del, MOVE: copyOrMove(true), COPY: copyOrMove(false), MKCOL: mkcol };
}
