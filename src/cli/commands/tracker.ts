import { parseArgs } from 'node:util';
import { ZodError } from 'zod';
import { mailError } from '../../core/errors.js';
import { getWorkPackage, listAttachments, listJournals, listWorkPackages } from '../../domain/tracker/read.js';
import {
  addMember,
  createCustomField,
  createEnum,
  createNamed,
  createProject,
  createUser,
  ENUM_KINDS,
  findProject,
  findUser,
  listCustomFields,
  listEnums,
  listMembers,
  listNamed,
  listProjects,
  listUsers,
  type EnumKind,
} from '../../domain/tracker/setup.js';
import { tq } from '../../domain/tracker/tables.js';
import type { Db } from '../../store/db.js';
import type { Command } from '../command.js';
import { withStore } from '../with-store.js';

const USAGE = `usage: postroom tracker users | projects | types | statuses | priorities | fields [--json]
       postroom tracker user add LOGIN EMAIL [NAME...]
       postroom tracker project add IDENTIFIER NAME...
       postroom tracker project show PROJECT [--json]
       postroom tracker member add PROJECT USER
       postroom tracker type|status|priority add NAME... [--default]
       postroom tracker category|version add PROJECT NAME...
       postroom tracker field add NAME... --format string|integer|date|list [--values A,B,C]
       postroom tracker wps [--project PROJECT] [--limit N] [--json]
       postroom tracker wp show ID [--json]
  (every form takes --config FILE)

The built-in tracker that the 'workpackage' route target files mail into. A mail's sender is
matched to a user by address (that maps a mail to a user; it authenticates nobody), who must be
a member of the project unless the route sets no_permission_check. PROJECT is an identifier or
id; USER a login, address or id. Exit 67 (EX_NOUSER) when something named does not exist, 64
on a usage error or a clash (a login, identifier or name that is taken).`;

function usage(msg: string): number {
  process.stderr.write(`postroom tracker: ${msg}\n`);
  return 64;
}

const withDb = <T>(configFile: string | undefined, fn: (db: Db) => Promise<T>) => withStore(configFile, (db) => fn(db));

const PLURAL: Record<string, EnumKind> = { types: 'type', statuses: 'status', priorities: 'priority' };

export const trackerCmd: Command = {
  name: 'tracker',
  summary: 'set up the built-in tracker (users, projects, types, fields) and read work packages made from mail',
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        json: { type: 'boolean', default: false },
        default: { type: 'boolean', default: false },
        format: { type: 'string' },
        values: { type: 'string' },
        project: { type: 'string' },
        limit: { type: 'string', default: '50' },
      },
    });
    const out = (s: string) => process.stdout.write(`${s}\n`);
    const print = (v: unknown, text: () => string) => out(values.json ? JSON.stringify(v, null, 2) : text());
    const [sub, verb, ...rest] = positionals;
    try {
      return await withDb(values.config, async (db) => {
        const q = tq(db.kysely);
        const project = async (ref: string) => (await findProject(q, ref)) ?? Promise.reject(mailError('NOT_FOUND', `No project ${ref}`));
        if (sub === 'users' && !verb) {
          const rows = await listUsers(q);
          print(rows, () => rows.map((u) => [u.login, u.email, u.name].join('\t')).join('\n'));
        } else if (sub === 'user' && verb === 'add' && rest.length >= 2) {
          const u = await createUser(db, { login: rest[0], email: rest[1], ...(rest.length > 2 ? { name: rest.slice(2).join(' ') } : {}) });
          print(u, () => `${u.login}\t${u.email}\t${u.name}`);
        } else if (sub === 'projects' && !verb) {
          const rows = await listProjects(q);
          print(rows, () => rows.map((p) => [p.id, p.identifier, p.name].join('\t')).join('\n'));
        } else if (sub === 'project' && verb === 'add' && rest.length >= 2) {
          const p = await createProject(db, { identifier: rest[0], name: rest.slice(1).join(' ') });
          print(p, () => `${p.id}\t${p.identifier}\t${p.name}`);
        } else if (sub === 'project' && verb === 'show' && rest.length === 1) {
          const p = await project(rest[0]);
          const detail = { ...p, members: await listMembers(q, p.id), categories: await listNamed(q, 'tracker_categories', p.id), versions: await listNamed(q, 'tracker_versions', p.id) };
          print(detail, () =>
            [
              `${p.id}\t${p.identifier}\t${p.name}`,
              `members: ${detail.members.map((m) => m.login).join(', ')}`,
              `categories: ${detail.categories.map((c) => c.name).join(', ')}`,
              `versions: ${detail.versions.map((v) => v.name).join(', ')}`,
            ].join('\n'),
          );
        } else if (sub === 'member' && verb === 'add' && rest.length === 2) {
          const p = await project(rest[0]);
          const u = await findUser(q, rest[1]);
          if (!u) throw mailError('NOT_FOUND', `No user ${rest[1]}`);
          await addMember(q, p.id, u.id);
          out(`${p.identifier}\t${u.login}`);
        } else if (PLURAL[sub] && !verb) {
          const rows = await listEnums(q, PLURAL[sub]);
          print(rows, () => rows.map((e) => [e.position, e.name, e.isDefault ? 'default' : ''].join('\t')).join('\n'));
        } else if ((ENUM_KINDS as readonly string[]).includes(sub) && verb === 'add' && rest.length) {
          const e = await createEnum(db, sub as EnumKind, { name: rest.join(' '), isDefault: values.default });
          print(e, () => `${e.kind}\t${e.name}${e.isDefault ? '\tdefault' : ''}`);
        } else if ((sub === 'category' || sub === 'version') && verb === 'add' && rest.length >= 2) {
          const p = await project(rest[0]);
          const n = await createNamed(db, sub === 'category' ? 'tracker_categories' : 'tracker_versions', p.id, rest.slice(1).join(' '));
          print(n, () => `${p.identifier}\t${sub}\t${n.name}`);
        } else if (sub === 'fields' && !verb) {
          const rows = await listCustomFields(q);
          print(rows, () => rows.map((f) => [f.name, f.format, f.possibleValues.join(',')].join('\t')).join('\n'));
        } else if (sub === 'field' && verb === 'add' && rest.length) {
          const possibleValues = values.values ? values.values.split(',').map((s) => s.trim()).filter(Boolean) : [];
          const f = await createCustomField(db, { name: rest.join(' '), format: values.format as 'string', possibleValues });
          print(f, () => `${f.name}\t${f.format}`);
        } else if (sub === 'wps' && !verb) {
          const p = values.project ? await project(values.project) : undefined;
          const rows = await listWorkPackages(q, { project: p?.id, limit: Number(values.limit) || 50 });
          print(rows, () => rows.map((w) => [`#${w.id}`, w.project.identifier, w.type, w.status, w.priority, w.subject].join('\t')).join('\n'));
        } else if (sub === 'wp' && verb === 'show' && rest.length === 1 && /^#?\d{1,15}$/.test(rest[0])) {
          const id = Number(rest[0].replace('#', ''));
          const w = await getWorkPackage(q, id);
          if (!w) throw mailError('NOT_FOUND', `No work package ${id}`);
          const journals = await listJournals(q, id);
          const attachments = await listAttachments(q, id);
          print({ ...w, journals, attachments }, () =>
            [
              `#${w.id} ${w.subject}`,
              `project ${w.project.identifier}, ${w.type}, ${w.status}, ${w.priority}, ${w.doneRatio}% done, author ${w.author?.login ?? 'Anonymous'}, assignee ${w.assignee?.login ?? '-'}`,
              '',
              w.description,
              ...journals.map((j) => `\n--- ${j.createdAt} ${j.user?.login ?? 'Anonymous'}: ${j.changes.map((c) => `${c.field} ${c.old ?? '-'} → ${c.new ?? '-'}`).join(', ')}\n${j.notes}`),
              ...attachments.map((a) => `attachment: ${a.filename} (${a.size} bytes)`),
            ].join('\n'),
          );
        } else {
          return usage('unknown form; see postroom tracker --help');
        }
        return 0;
      });
    } catch (err) {
      if (err instanceof ZodError) return usage(err.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; '));
      const code = (err as { code?: string }).code;
      if (code === 'NOT_FOUND') {
        process.stderr.write(`postroom tracker: ${(err as Error).message}\n`);
        return 67;
      }
      if (code === 'INVALID_REQUEST') return usage((err as Error).message);
      throw err;
    }
  },
};
