import { parseArgs } from 'node:util';
import { mailError } from '../../core/errors.js';
import { grant, listAcl } from '../../domain/acl.js';
import { objectAddress, type ObjectsConfig } from '../../domain/objects/config.js';
import { folderSettings } from '../../domain/folders/settings.js';
import { createObject, getObject, listObjects } from '../../domain/objects/store.js';
import { workflowDefinition } from '../../domain/workflows/definition.js';
import { createWorkflow, listProcesses, listWorkflows } from '../../domain/workflows/store.js';
import type { Db } from '../../store/db.js';
import type { Command } from '../command.js';
import { withStore } from '../with-store.js';

const USAGE = `usage: postroom objects folders [--json]
       postroom objects folder create NAME [--collect TYPE]... [--keep-unmatched] [--parent ID]
       postroom objects workflows [--json]
       postroom objects workflow create NAME [--input TYPE] [--timeout 60s] -- PROGRAM [ARG...]
       postroom objects workflow create NAME [--input TYPE] --url URL [--allow-private]
       postroom objects show ID [--json]
       postroom objects grant ID PRINCIPAL PERMISSIONS
       postroom objects processes [--workflow ID] [--limit N] [--json]
  (every form takes --config FILE)

Built-in objects reachable by mail: folders collect it at PREFIX+<id>@DOMAIN, workflows are
started at PREFIX+wf+<name>@DOMAIN (objects.prefix / objects.domain in the config).
--collect: message/rfc822 (default, the raw message), text/plain (the body), or attachment
types (application/pdf, image/*), repeatable. A workflow's command is an argv list given after
'--', run without a shell. PRINCIPAL is 'network' (unauthenticated mail) or an SMTP user;
PERMISSIONS are letters r w d a ('' removes the entry): folders need rw, workflows r.
Exit 67 (EX_NOUSER) when the object does not exist, 64 on a usage error.`;

function usage(msg: string): number {
  process.stderr.write(`postroom objects: ${msg}\n`);
  return 64;
}

const withDb = <T>(configFile: string | undefined, fn: (db: Db, objects: ObjectsConfig) => Promise<T>) =>
  withStore(configFile, (db, config) => fn(db, config.objects));

export const objectsCmd: Command = {
  name: 'objects',
  summary: 'create and list folders and workflows reachable by mail; grant rights on them',
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        json: { type: 'boolean', default: false },
        collect: { type: 'string', multiple: true },
        'keep-unmatched': { type: 'boolean', default: false },
        parent: { type: 'string' },
        input: { type: 'string' },
        timeout: { type: 'string' },
        url: { type: 'string' },
        'allow-private': { type: 'boolean', default: false },
        workflow: { type: 'string' },
        limit: { type: 'string', default: '50' },
      },
    });
    const out = (s: string) => process.stdout.write(`${s}\n`);
    const print = (v: unknown, text: () => string) => out(values.json ? JSON.stringify(v, null, 2) : text());
    const [sub, ...rest] = positionals;
    const num = (s: string | undefined, what: string) => {
      if (!s || !/^\d{1,15}$/.test(s)) throw mailError('INVALID_REQUEST', `${what} must be a number`);
      return Number(s);
    };
    try {
      return await withDb(values.config, async (db, cfg) => {
        const addr = (t: { id: number } | { workflow: string }) => objectAddress(cfg, t) ?? '-';
        if (sub === 'folders' && !rest.length) {
          const rows = await listObjects(db.kysely, { kind: 'folder', limit: 10_000 });
          print(rows, () => rows.map((f) => [f.id, f.name, f.parent ?? '-', JSON.stringify(f.properties), addr({ id: f.id })].join('\t')).join('\n'));
          return 0;
        }
        if (sub === 'folder' && rest[0] === 'create' && rest.length === 2) {
          const collect = values.collect ?? [];
          const settings = folderSettings.parse({
            ...(collect.length ? { collectMIMEType: collect.length === 1 ? collect[0] : collect } : {}),
            ...(values['keep-unmatched'] ? { keepUnmatched: true } : {}),
          });
          const parent = values.parent ? num(values.parent, '--parent') : null;
          if (parent !== null && (await getObject(db.kysely, parent))?.kind !== 'folder') throw mailError('NOT_FOUND', `No folder ${parent}`);
          const f = await createObject(db.kysely, { kind: 'folder', name: rest[1], parent, properties: settings });
          print(f, () => `${f.id}\t${f.name}\t${addr({ id: f.id })}`);
          return 0;
        }
        if (sub === 'workflows' && !rest.length) {
          const rows = await listWorkflows(db.kysely);
          print(rows, () => rows.map((w) => [w.id, w.name, w.input.type, JSON.stringify(w.action), addr({ workflow: w.name })].join('\t')).join('\n'));
          return 0;
        }
        if (sub === 'workflow' && rest[0] === 'create' && rest.length >= 2) {
          const [, name, ...command] = rest;
          if (!!values.url === !!command.length) return usage('give either -- PROGRAM [ARG...] or --url URL');
          const action = values.url
            ? { url: values.url, allowPrivate: values['allow-private'], ...(values.timeout ? { timeout: values.timeout } : {}) }
            : { command, ...(values.timeout ? { timeout: values.timeout } : {}) };
          const parsed = workflowDefinition.safeParse({ name, action, ...(values.input ? { input: { type: values.input } } : {}) });
          if (!parsed.success) return usage(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
          const w = await createWorkflow(db, parsed.data);
          print(w, () => `${w.id}\t${w.name}\t${addr({ workflow: w.name })}`);
          return 0;
        }
        if (sub === 'show' && rest.length === 1) {
          const o = await getObject(db.kysely, num(rest[0], 'ID'));
          if (!o) throw mailError('NOT_FOUND', `No object ${rest[0]}`);
          const acl = await listAcl(db.kysely, o.id);
          print({ ...o, acl }, () =>
            [`${o.id}\t${o.kind}\t${o.name}`, `properties: ${JSON.stringify(o.properties)}`, ...acl.map((e) => `acl: ${e.principal} ${e.permissions}`)].join('\n'),
          );
          return 0;
        }
        if (sub === 'grant' && (rest.length === 3 || rest.length === 2)) {
          const id = num(rest[0], 'ID');
          if (!(await getObject(db.kysely, id))) throw mailError('NOT_FOUND', `No object ${id}`);
          const p = await grant(db.kysely, id, rest[1], rest[2] ?? '');
          out(p ? `${id}\t${rest[1]}\t${p}` : `${id}\t${rest[1]}\t(removed)`);
          return 0;
        }
        if (sub === 'processes' && !rest.length) {
          const rows = await listProcesses(db.kysely, { workflow: values.workflow ? num(values.workflow, '--workflow') : undefined, limit: num(values.limit, '--limit') });
          print(rows, () => rows.map((p) => [p.id, p.workflow, p.state, p.status ?? '', p.output ?? '-', p.createdAt].join('\t')).join('\n'));
          return 0;
        }
        return usage(`unknown form; see postroom objects --help`);
      });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'NOT_FOUND') {
        process.stderr.write(`postroom objects: ${(err as Error).message}\n`);
        return 67;
      }
      if (code === 'INVALID_REQUEST') return usage((err as Error).message);
      throw err;
    }
  },
};
