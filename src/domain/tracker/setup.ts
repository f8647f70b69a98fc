import { z } from 'zod';
import { mailError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import type { Db } from '../../store/db.js';
import { isUniqueViolation } from '../objects/store.js';
import { tq, type TQ } from './tables.js';

/**
 * What a tracker is set up with before mail can make work packages: users (who may write,
 * matched by mail address), projects and their members, the global lists of types, statuses
 * and priorities, each project's categories and versions, and custom fields.
 */

export const ENUM_KINDS = ['type', 'status', 'priority'] as const;
export type EnumKind = (typeof ENUM_KINDS)[number];
export const FIELD_FORMATS = ['string', 'integer', 'date', 'list'] as const;
export type FieldFormat = (typeof FIELD_FORMATS)[number];

export const UserInput = z.strictObject({
  login: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$/, 'letters, digits, . _ @ - (up to 100)'),
  email: z.string().min(3).max(320).regex(/^[^\s@<>]+@[^\s@<>]+$/, 'a mail address').transform((s) => s.toLowerCase()),
  name: z.string().min(1).max(255).optional(),
});
export const ProjectInput = z.strictObject({
  identifier: z.string().regex(/^[a-z][a-z0-9_-]{0,99}$/, 'lower-case letters, digits, _ - (up to 100), starting with a letter'),
  name: z.string().min(1).max(255),
});
/** Names of types, statuses, priorities, categories, versions and custom fields. */
export const ItemName = z.string().trim().min(1).max(255).regex(/^[^\r\n]+$/, 'one line');
/** A custom field's name is a key of `Key: value` lines: no colon. */
export const FieldName = ItemName.regex(/^[^:]+$/, 'no colon (the name is the key of a `Key: value` line)');
export const EnumInput = z.strictObject({ name: ItemName, isDefault: z.boolean().default(false) });
export const CustomFieldInput = z
  .strictObject({ name: FieldName, format: z.enum(FIELD_FORMATS), possibleValues: z.array(z.string().min(1).max(255)).max(1000).default([]) })
  .refine((f) => f.format !== 'list' || f.possibleValues.length > 0, { message: 'a list field needs possibleValues', path: ['possibleValues'] });

export interface UserRecord {
  id: string;
  login: string;
  email: string;
  name: string;
  createdAt: string;
}
export interface ProjectRecord {
  id: number;
  identifier: string;
  name: string;
}
export interface EnumRecord {
  id: string;
  kind: EnumKind;
  name: string;
  position: number;
  isDefault: boolean;
}
export interface NamedRecord {
  id: string;
  project: number;
  name: string;
}
export interface CustomFieldRecord {
  id: string;
  name: string;
  format: FieldFormat;
  possibleValues: string[];
}

/** Run `fn`; a unique-constraint clash becomes INVALID_REQUEST saying `taken`. */
async function unique<T>(fn: () => Promise<T>, taken: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isUniqueViolation(err)) throw mailError('INVALID_REQUEST', taken);
    throw err;
  }
}

const toUser = (r: { id: string; login: string; email: string; name: string; created_at: string }): UserRecord => ({
  id: r.id,
  login: r.login,
  email: r.email,
  name: r.name,
  createdAt: r.created_at,
});

/** Add a user; INVALID_REQUEST when the login or address is taken. */
export async function createUser(db: Db, input: z.input<typeof UserInput>): Promise<UserRecord> {
  const u = UserInput.parse(input);
  const row = { id: newId(), login: u.login, email: u.email, name: u.name ?? u.login, created_at: new Date().toISOString() };
  await unique(() => tq(db.kysely).insertInto('tracker_users').values(row).execute(), `a user with login '${u.login}' or address '${u.email}' exists`);
  return toUser(row);
}

/** Every user, by login. */
export async function listUsers(q: TQ): Promise<UserRecord[]> {
  return (await q.selectFrom('tracker_users').selectAll().orderBy('login').execute()).map(toUser);
}

/** A user by id, login or mail address (case-insensitive), or undefined. */
export async function findUser(q: TQ, ref: string): Promise<UserRecord | undefined> {
  const r = await q
    .selectFrom('tracker_users')
    .selectAll()
    .where((eb) => eb.or([eb('id', '=', ref), eb('login', '=', ref), eb('email', '=', ref.toLowerCase())]))
    .executeTakeFirst();
  return r ? toUser(r) : undefined;
}

/** The user whose address this is (case-insensitive), or undefined. */
export async function userByEmail(q: TQ, email: string): Promise<UserRecord | undefined> {
  const r = await q.selectFrom('tracker_users').selectAll().where('email', '=', email.trim().toLowerCase()).executeTakeFirst();
  return r ? toUser(r) : undefined;
}

/** Delete a user (their work packages stay, with no author). */
export async function deleteUser(q: TQ, id: string): Promise<boolean> {
  const r = await q.deleteFrom('tracker_users').where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** Add a project (an object, so its id is from the shared sequence); INVALID_REQUEST when the identifier is taken. */
export async function createProject(db: Db, input: z.input<typeof ProjectInput>): Promise<ProjectRecord> {
  const p = ProjectInput.parse(input);
  const id = await unique(
    () =>
      tq(db.kysely)
        .transaction()
        .execute(async (trx) => {
          const now = new Date().toISOString();
          const { id } = await trx
            .insertInto('objects')
            .values({ kind: 'project', name: p.identifier, parent: null, properties: '{}', created_at: now, updated_at: now })
            .returning('id')
            .executeTakeFirstOrThrow();
          await trx.insertInto('tracker_projects').values({ id: Number(id), identifier: p.identifier, name: p.name }).execute();
          return Number(id);
        }),
    `a project '${p.identifier}' exists`,
  );
  return { id, identifier: p.identifier, name: p.name };
}

/** Every project, by identifier. */
export async function listProjects(q: TQ): Promise<ProjectRecord[]> {
  return (await q.selectFrom('tracker_projects').selectAll().orderBy('identifier').execute()).map((r) => ({ ...r, id: Number(r.id) }));
}

/** A project by identifier (exact) or numeric id, or undefined. */
export async function findProject(q: TQ, ref: string | number): Promise<ProjectRecord | undefined> {
  const s = String(ref);
  let query = q.selectFrom('tracker_projects').selectAll();
  query = /^\d{1,15}$/.test(s) ? query.where((eb) => eb.or([eb('identifier', '=', s), eb('id', '=', Number(s))])) : query.where('identifier', '=', s);
  const r = await query.executeTakeFirst();
  return r ? { ...r, id: Number(r.id) } : undefined;
}

/** Delete a project with everything in it. */
export async function deleteProject(q: TQ, id: number): Promise<boolean> {
  const r = await q.deleteFrom('objects').where('id', '=', id).where('kind', '=', 'project').executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** Logins of a project's members. */
export async function listMembers(q: TQ, project: number): Promise<UserRecord[]> {
  const rows = await q
    .selectFrom('tracker_members')
    .innerJoin('tracker_users', 'tracker_users.id', 'tracker_members.user_id')
    .selectAll('tracker_users')
    .where('tracker_members.project', '=', project)
    .orderBy('tracker_users.login')
    .execute();
  return rows.map(toUser);
}

/** Make a user a member of a project (again is no change). */
export async function addMember(q: TQ, project: number, user: string): Promise<void> {
  await q.insertInto('tracker_members').values({ project, user_id: user }).onConflict((oc) => oc.columns(['project', 'user_id']).doNothing()).execute();
}

/** Remove a member. */
export async function removeMember(q: TQ, project: number, user: string): Promise<boolean> {
  const r = await q.deleteFrom('tracker_members').where('project', '=', project).where('user_id', '=', user).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** Whether the user is a member of the project. */
export async function isMember(q: TQ, project: number, user: string): Promise<boolean> {
  return !!(await q.selectFrom('tracker_members').select('user_id').where('project', '=', project).where('user_id', '=', user).executeTakeFirst());
}

const toEnum = (r: { id: string; kind: string; name: string; position: number; is_default: number }): EnumRecord => ({
  id: r.id,
  kind: r.kind as EnumKind,
  name: r.name,
  position: Number(r.position),
  isDefault: !!r.is_default,
});

/** Add a type, status or priority at the end of its list; `isDefault` makes it the one used when nothing else says. */
export async function createEnum(db: Db, kind: EnumKind, input: z.input<typeof EnumInput>): Promise<EnumRecord> {
  const e = EnumInput.parse(input);
  const q = tq(db.kysely);
  return unique(
    () =>
      q.transaction().execute(async (trx) => {
        const last = await trx.selectFrom('tracker_enums').select((eb) => eb.fn.max('position').as('max')).where('kind', '=', kind).executeTakeFirst();
        if (e.isDefault) await trx.updateTable('tracker_enums').set({ is_default: 0 }).where('kind', '=', kind).execute();
        const row = { id: newId(), kind, name: e.name, position: Number(last?.max ?? 0) + 1, is_default: e.isDefault ? 1 : 0 };
        await trx.insertInto('tracker_enums').values(row).execute();
        return toEnum(row);
      }),
    `a ${kind} named '${e.name}' exists`,
  );
}

/** A list (types, statuses or priorities) in order. */
export async function listEnums(q: TQ, kind: EnumKind): Promise<EnumRecord[]> {
  return (await q.selectFrom('tracker_enums').selectAll().where('kind', '=', kind).orderBy('position').execute()).map(toEnum);
}

/** Delete a list entry; INVALID_REQUEST while work packages use it. */
export async function deleteEnum(q: TQ, id: string): Promise<boolean> {
  try {
    const r = await q.deleteFrom('tracker_enums').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  } catch (err) {
    if (/foreign key/i.test(String((err as Error).message))) throw mailError('INVALID_REQUEST', 'work packages still use it');
    throw err;
  }
}

/** Add a category or version to a project. */
export async function createNamed(db: Db, table: 'tracker_categories' | 'tracker_versions', project: number, name: string): Promise<NamedRecord> {
  const row = { id: newId(), project, name: ItemName.parse(name) };
  const what = table === 'tracker_categories' ? 'category' : 'version';
  await unique(() => tq(db.kysely).insertInto(table).values(row).execute(), `project ${project} has a ${what} '${row.name}'`);
  return row;
}

/** A project's categories or versions, by name. */
export async function listNamed(q: TQ, table: 'tracker_categories' | 'tracker_versions', project: number): Promise<NamedRecord[]> {
  return (await q.selectFrom(table).selectAll().where('project', '=', project).orderBy('name').execute()).map((r) => ({ ...r, project: Number(r.project) }));
}

/** Delete a category or version (work packages keep nothing in its place). */
export async function deleteNamed(q: TQ, table: 'tracker_categories' | 'tracker_versions', id: string): Promise<boolean> {
  const r = await q.deleteFrom(table).where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

const toField = (r: { id: string; name: string; format: string; possible_values: string }): CustomFieldRecord => ({
  id: r.id,
  name: r.name,
  format: r.format as FieldFormat,
  possibleValues: JSON.parse(r.possible_values) as string[],
});

/** Add a custom field. */
export async function createCustomField(db: Db, input: z.input<typeof CustomFieldInput>): Promise<CustomFieldRecord> {
  const f = CustomFieldInput.parse(input);
  const row = { id: newId(), name: f.name, format: f.format, possible_values: JSON.stringify(f.possibleValues) };
  await unique(() => tq(db.kysely).insertInto('tracker_custom_fields').values(row).execute(), `a custom field '${f.name}' exists`);
  return toField(row);
}

/** Every custom field, by name. */
export async function listCustomFields(q: TQ): Promise<CustomFieldRecord[]> {
  return (await q.selectFrom('tracker_custom_fields').selectAll().orderBy('name').execute()).map(toField);
}

/** Delete a custom field and its values. */
export async function deleteCustomField(q: TQ, id: string): Promise<boolean> {
  const r = await q.deleteFrom('tracker_custom_fields').where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}
