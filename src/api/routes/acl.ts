import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { grant, listAcl, normalisePermissions } from '../../domain/acl.js';
import { requireObject } from '../../domain/objects/store.js';
import { defineRoute } from '../route.js';
import type { ApiDeps } from '../deps.js';
import { ObjectId } from './object-views.js';

const AclEntry = z.object({ principal: z.string(), permissions: z.string().describe('letters: r read, w write, d delete, a administer') });
const AclList = z.object({ items: z.array(AclEntry) });
const Principal = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[^\s\u0000-\u001f/]+$/, 'a principal: network, or an SMTP AUTH user name')
  .describe("'network' (unauthenticated intake) or an SMTP AUTH user name");
const EntryParams = z.strictObject({ id: ObjectId, principal: Principal });
const Grant = z.strictObject({
  permissions: z
    .string()
    .max(8)
    .transform((s, ctx) => {
      try {
        return normalisePermissions(s);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    })
    .describe("e.g. 'rw' (deliver into a folder), 'r' (start a workflow); '' removes the entry"),
});

/** ACL entries of any object: who (principal) may do what (permission letters). */
export async function aclRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const db = deps.db.kysely;
  defineRoute(
    app,
    {
      method: 'GET',
      url: '/api/v1/objects/:id/acl',
      summary: "An object's ACL",
      description: 'Unauthenticated SMTP, pipe and HTTP intake act as `network`, which holds no rights until granted here.',
      tags: ['acl'],
      params: z.strictObject({ id: ObjectId }),
      responses: { 200: { description: 'the entries', schema: AclList } },
    },
    async ({ params }) => {
      await requireObject(db, params.id);
      return { items: await listAcl(db, params.id) };
    },
  );

  defineRoute(
    app,
    {
      method: 'PUT',
      url: '/api/v1/objects/:id/acl/:principal',
      summary: "Set a principal's permissions on an object",
      tags: ['acl'],
      params: EntryParams,
      body: Grant,
      responses: { 200: { description: 'the entry as stored', schema: AclEntry } },
    },
    async ({ params, body }) => {
      await requireObject(db, params.id);
      return { principal: params.principal, permissions: await grant(db, params.id, params.principal, body.permissions) };
    },
  );

  defineRoute(
    app,
    {
      method: 'DELETE',
      url: '/api/v1/objects/:id/acl/:principal',
      summary: "Remove a principal's entry",
      tags: ['acl'],
      params: EntryParams,
      responses: { 204: { description: 'removed (or there was none)' } },
    },
    async ({ params, reply }) => {
      await requireObject(db, params.id);
      await grant(db, params.id, params.principal, '');
      return reply.code(204).send();
    },
  );
}
