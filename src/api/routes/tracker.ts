import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import {
  addMember,
  createCustomField,
  createEnum,
  createNamed,
  createProject,
  createUser,
  CustomFieldInput,
  deleteCustomField,
  deleteEnum,
  deleteNamed,
  deleteProject,
  deleteUser,
  EnumInput,
  findProject,
  findUser,
  ItemName,
  listCustomFields,
  listEnums,
  listMembers,
  listNamed,
  listProjects,
  listUsers,
  ProjectInput,
  removeMember,
  UserInput,
  type EnumKind,
} from '../../domain/tracker/setup.js';
import { tq } from '../../domain/tracker/tables.js';
import { defineRoute } from '../route.js';
import type { ApiDeps } from '../deps.js';
import { trackerWorkPackageRoutes } from './tracker-work-packages.js';
import { CustomFieldView, EnumView, NamedView, ProjectDetail, ProjectRef, ProjectView, StringId, TRACKER, UserView } from './tracker-views.js';

const TAGS = ['tracker'];
const list = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item) });
const deleted = { 204: { description: 'deleted' } };

/**
 * The tracker's setup: users (matched by mail address), projects and members, types, statuses
 * and priorities, categories and versions per project, custom fields. Work packages are read
 * through tracker-work-packages.ts; mail makes them (the workpackage target).
 */
export async function trackerRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const db = deps.db;
  const q = tq(db.kysely);
  const project = async (ref: string) => (await findProject(q, ref)) ?? Promise.reject(mailError('NOT_FOUND', `No project ${ref}`));
  const gone = (ok: boolean, what: string) => {
    if (!ok) throw mailError('NOT_FOUND', `No ${what}`);
  };

  defineRoute(app, { method: 'GET', url: `${TRACKER}/users`, summary: 'Tracker users, by login', tags: TAGS, responses: { 200: { description: 'the users', schema: list(UserView) } } }, async () => ({
    items: await listUsers(q),
  }));
  defineRoute(
    app,
    {
      method: 'POST',
      url: `${TRACKER}/users`,
      summary: 'Add a user (mail from this address is theirs)',
      description: 'Matching a sender to a user by address maps a mail to a user; it authenticates nobody (anyone can write any From:).',
      tags: TAGS,
      body: UserInput,
      responses: { 201: { description: 'the user', schema: UserView } },
    },
    async ({ body, reply }) => reply.code(201).send(await createUser(db, body)),
  );
  defineRoute(
    app,
    { method: 'DELETE', url: `${TRACKER}/users/:id`, summary: 'Delete a user (their work packages keep no author)', tags: TAGS, params: StringId, responses: deleted },
    async ({ params, reply }) => {
      const u = await findUser(q, params.id);
      gone(!!u && (await deleteUser(q, u.id)), `user ${params.id}`);
      return reply.code(204).send();
    },
  );

  defineRoute(app, { method: 'GET', url: `${TRACKER}/projects`, summary: 'Projects, by identifier', tags: TAGS, responses: { 200: { description: 'the projects', schema: list(ProjectView) } } }, async () => ({
    items: await listProjects(q),
  }));
  defineRoute(
    app,
    { method: 'POST', url: `${TRACKER}/projects`, summary: 'Add a project', tags: TAGS, body: ProjectInput, responses: { 201: { description: 'the project', schema: ProjectView } } },
    async ({ body, reply }) => reply.code(201).send(await createProject(db, body)),
  );
  defineRoute(
    app,
    {
      method: 'GET',
      url: `${TRACKER}/projects/:project`,
      summary: 'A project with its members, categories and versions',
      tags: TAGS,
      params: ProjectRef,
      responses: { 200: { description: 'the project', schema: ProjectDetail } },
    },
    async ({ params }) => {
      const p = await project(params.project);
      const members = (await listMembers(q, p.id)).map(({ id, login, name }) => ({ id, login, name }));
      return { ...p, members, categories: await listNamed(q, 'tracker_categories', p.id), versions: await listNamed(q, 'tracker_versions', p.id) };
    },
  );
  defineRoute(
    app,
    { method: 'DELETE', url: `${TRACKER}/projects/:project`, summary: 'Delete a project and its work packages', tags: TAGS, params: ProjectRef, responses: deleted },
    async ({ params, reply }) => {
      await deleteProject(q, (await project(params.project)).id);
      return reply.code(204).send();
    },
  );

  const MemberParams = ProjectRef.extend({ user: z.string().min(1).max(320).describe('user id, login or address') });
  for (const method of ['PUT', 'DELETE'] as const) {
    defineRoute(
      app,
      {
        method,
        url: `${TRACKER}/projects/:project/members/:user`,
        summary: method === 'PUT' ? 'Make a user a member (members may write mail to the project)' : 'Remove a member',
        tags: TAGS,
        params: MemberParams,
        responses: { 204: { description: method === 'PUT' ? 'a member' : 'no longer a member' } },
      },
      async ({ params, reply }) => {
        const p = await project(params.project);
        const u = await findUser(q, params.user);
        if (!u) throw mailError('NOT_FOUND', `No user ${params.user}`);
        if (method === 'PUT') await addMember(q, p.id, u.id);
        else gone(await removeMember(q, p.id, u.id), `member ${u.login} of ${p.identifier}`);
        return reply.code(204).send();
      },
    );
  }

  for (const [segment, table] of [
    ['categories', 'tracker_categories'],
    ['versions', 'tracker_versions'],
  ] as const) {
    const url = `${TRACKER}/projects/:project/${segment}`;
    defineRoute(app, { method: 'GET', url, summary: `A project's ${segment}`, tags: TAGS, params: ProjectRef, responses: { 200: { description: segment, schema: list(NamedView) } } }, async ({ params }) => ({
      items: await listNamed(q, table, (await project(params.project)).id),
    }));
    defineRoute(
      app,
      { method: 'POST', url, summary: `Add to a project's ${segment}`, tags: TAGS, params: ProjectRef, body: z.strictObject({ name: ItemName }), responses: { 201: { description: 'added', schema: NamedView } } },
      async ({ params, body, reply }) => reply.code(201).send(await createNamed(db, table, (await project(params.project)).id, body.name)),
    );
    defineRoute(
      app,
      { method: 'DELETE', url: `${url}/:id`, summary: `Delete one of a project's ${segment}`, tags: TAGS, params: ProjectRef.extend({ id: z.string().min(1).max(64) }), responses: deleted },
      async ({ params, reply }) => {
        await project(params.project);
        gone(await deleteNamed(q, table, params.id), `${segment} ${params.id}`);
        return reply.code(204).send();
      },
    );
  }

  for (const [segment, kind] of [
    ['types', 'type'],
    ['statuses', 'status'],
    ['priorities', 'priority'],
  ] as [string, EnumKind][]) {
    const url = `${TRACKER}/${segment}`;
    defineRoute(app, { method: 'GET', url, summary: `The ${segment}, in order`, tags: TAGS, responses: { 200: { description: segment, schema: list(EnumView) } } }, async () => ({
      items: await listEnums(q, kind),
    }));
    defineRoute(
      app,
      { method: 'POST', url, summary: `Add a ${kind} (isDefault: used when neither route nor mail says)`, tags: TAGS, body: EnumInput, responses: { 201: { description: 'added', schema: EnumView } } },
      async ({ body, reply }) => reply.code(201).send(await createEnum(db, kind, body)),
    );
    defineRoute(app, { method: 'DELETE', url: `${url}/:id`, summary: `Delete a ${kind} no work package uses`, tags: TAGS, params: StringId, responses: deleted }, async ({ params, reply }) => {
      gone(await deleteEnum(q, params.id), `${kind} ${params.id}`);
      return reply.code(204).send();
    });
  }

  const FIELDS = `${TRACKER}/custom-fields`;
  defineRoute(app, { method: 'GET', url: FIELDS, summary: 'Custom fields, by name', tags: TAGS, responses: { 200: { description: 'the fields', schema: list(CustomFieldView) } } }, async () => ({
    items: await listCustomFields(q),
  }));
  defineRoute(
    app,
    {
      method: 'POST',
      url: FIELDS,
      summary: 'Add a custom field (mail sets it with a `Name: value` line)',
      tags: TAGS,
      body: CustomFieldInput,
      responses: { 201: { description: 'the field', schema: CustomFieldView } },
    },
    async ({ body, reply }) => reply.code(201).send(await createCustomField(db, body)),
  );
  defineRoute(app, { method: 'DELETE', url: `${FIELDS}/:id`, summary: 'Delete a custom field and its values', tags: TAGS, params: StringId, responses: deleted }, async ({ params, reply }) => {
    gone(await deleteCustomField(q, params.id), `custom field ${params.id}`);
    return reply.code(204).send();
  });

  await trackerWorkPackageRoutes(app, deps);
}
