import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import { addUser, deleteUser, listUsers, ROLES, updateUser, USER_NAME, type User } from '../../store/users.js';
import { defineRoute } from '../route.js';
import type { ApiDeps } from '../deps.js';

export const USERS = '/api/v1/users';

const UserView = z.object({
  name: z.string(),
  role: z.enum(ROLES).describe('viewer: read; operator: also replay, resume, approve; admin: everything'),
  disabled: z.boolean().describe('cannot sign in; sessions and tokens stop working'),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const Password = z.string().min(8).max(1024).describe('at least 8 characters; kept only as a scrypt hash');
const UserCreate = z.strictObject({ name: z.string().regex(USER_NAME, 'letters, digits, ., _, @ or -; at most 64'), role: z.enum(ROLES), password: Password });
const UserPatch = z.strictObject({ role: z.enum(ROLES).optional(), password: Password.optional(), disabled: z.boolean().optional() });
const UserParams = z.strictObject({ name: z.string().min(1).max(64) });

const view = ({ id: _id, ...u }: User) => u;

/** Users (admin only): list, add, change role / password / disabled, delete. */
export async function userRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { db, config } = deps;
  const tags = ['users'];

  defineRoute(app, { method: 'GET', url: USERS, summary: 'Every user', tags, role: 'admin', responses: { 200: { description: 'the users by name', schema: z.object({ items: z.array(UserView) }) } } }, async () => ({
    items: (await listUsers(db.kysely)).map(view),
  }));

  defineRoute(
    app,
    { method: 'POST', url: USERS, summary: 'Add a user', tags, role: 'admin', audit: 'user.create', body: UserCreate, responses: { 201: { description: 'the user', schema: UserView }, 409: { description: 'the name is taken (code CONFLICT)' } } },
    async ({ body, request, reply }) => {
      const u = await addUser(db, body, config.signIn.scryptCost);
      request.auditNote = { object: `user:${u.name}`, detail: { role: u.role } };
      return reply.code(201).send(view(u));
    },
  );

  defineRoute(
    app,
    {
      method: 'PATCH',
      url: `${USERS}/:name`,
      summary: 'Change a user\'s role, password or disabled flag (a new password or disabling signs them out everywhere)',
      tags,
      role: 'admin',
      audit: 'user.update',
      params: UserParams,
      body: UserPatch,
      responses: { 200: { description: 'the user now', schema: UserView }, 409: { description: 'it would leave no enabled admin (code CONFLICT)' } },
    },
    async ({ params, body, request }) => {
      if (body.role === undefined && body.password === undefined && body.disabled === undefined) throw mailError('INVALID_REQUEST', 'body: give role, password or disabled');
      const u = await updateUser(db, params.name, body, config.signIn.scryptCost);
      // Which fields changed, never the password itself.
      request.auditNote = { object: `user:${u.name}`, detail: { ...(body.role ? { role: body.role } : {}), ...(body.disabled === undefined ? {} : { disabled: body.disabled }), ...(body.password ? { password: 'changed' } : {}) } };
      return view(u);
    },
  );

  defineRoute(
    app,
    { method: 'DELETE', url: `${USERS}/:name`, summary: 'Delete a user with their sessions and tokens (the audit log keeps their name)', tags, role: 'admin', audit: 'user.delete', params: UserParams, responses: { 204: { description: 'deleted' }, 409: { description: 'the last enabled admin (code CONFLICT)' } } },
    async ({ params, request, reply }) => {
      if (!(await deleteUser(db, params.name))) throw mailError('NOT_FOUND', `no user '${params.name}'`);
      request.auditNote = { object: `user:${params.name}` };
      return reply.code(204).send();
    },
  );
}
