import os from 'node:os';
import readline from 'node:readline';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { MailError } from '../../core/errors.js';
import { addToken, listTokens, revokeToken, type TokenScope } from '../../store/api-tokens.js';
import { recordAudit } from '../../store/audit-log.js';
import type { Db } from '../../store/db.js';
import { addUser, deleteUser, getUserByName, listUsers, ROLES, toUser, updateUser, type Role } from '../../store/users.js';
import type { Command } from '../command.js';
import { withStore } from '../with-store.js';

const USERS_USAGE = `usage: postroom users add NAME --role admin|operator|viewer [--password-stdin] [--config FILE]
       postroom users list [--json] [--config FILE]
       postroom users set-role NAME admin|operator|viewer [--config FILE]
       postroom users disable|enable NAME [--config FILE]
       postroom users passwd NAME [--password-stdin] [--config FILE]
       postroom users delete NAME [--config FILE]

Users sign in to the console and own API tokens. Roles: viewer reads; operator also replays
deliveries, resumes paused targets and approves held posts; admin does everything (users,
tokens, configuration, the audit log). The password is asked for on the terminal (twice), or
read from the first line of standard input with --password-stdin; never from the command line,
where 'ps' would show it. At least 8 characters; kept only as a scrypt hash (http.signIn.scryptCost).
A new password or 'disable' signs the user out everywhere. Each change is written to the audit
log as cli:<your login name>. Exit 67 (EX_NOUSER) when the user does not exist, 64 on a usage error.`;

const TOKENS_USAGE = `usage: postroom tokens add USER --name TEXT [--scope read|write] [--config FILE]
       postroom tokens list [--user USER] [--json] [--config FILE]
       postroom tokens revoke ID [--config FILE]

API tokens of a user (send as 'Authorization: Bearer prt_…'). A read token has viewer powers
whatever the user's role; a write token has the user's role. 'add' prints the token once: only
its sha256 is kept, so it cannot be shown again. 'revoke' ends it at once (it stays listed).
Exit 67 (EX_NOUSER) when the user or token does not exist, 64 on a usage error.`;

const out = (s: string) => process.stdout.write(`${s}\n`);
const actor = () => `cli:${os.userInfo().username}`;

function usage(cmd: string, text: string, why?: string): number {
  process.stderr.write(why ? `postroom ${cmd}: ${why}\n'postroom ${cmd} --help' shows its usage.\n` : `${text}\n`);
  return 64;
}

function noUser(cmd: string, what: string): number {
  process.stderr.write(`postroom ${cmd}: ${what}\n`);
  return 67;
}

/** One line of standard input (--password-stdin), without its line ending. */
async function stdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
}

/** Ask on the terminal without echoing what is typed. */
async function ask(question: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk, _enc, done) {
      if (!muted) process.stderr.write(chunk as Buffer);
      done();
    },
  });
  const rl = readline.createInterface({ input: process.stdin, output, terminal: true });
  try {
    process.stderr.write(question);
    muted = true;
    return await new Promise<string>((resolve) => rl.question('', resolve));
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}

/** The new password: from stdin, or asked twice on the terminal; undefined (after saying why) when neither works. */
async function newPassword(cmd: string, fromStdin: boolean): Promise<string | undefined> {
  if (fromStdin) return stdinLine();
  if (!process.stdin.isTTY) {
    process.stderr.write(`postroom ${cmd}: no terminal to ask for the password on; pipe it in with --password-stdin\n`);
    return undefined;
  }
  const first = await ask('Password: ');
  if ((await ask('Again: ')) !== first) {
    process.stderr.write(`postroom ${cmd}: the two passwords differ\n`);
    return undefined;
  }
  return first;
}

const isRole = (r: string | undefined): r is Role => (ROLES as readonly string[]).includes(r ?? '');

/** A refused value (a short password, a bad name) is the caller's mistake: 64 with the reason. */
async function orUsage(cmd: string, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof MailError && err.code === 'INVALID_REQUEST') return usage(cmd, '', err.message);
    if (err instanceof MailError && err.code === 'NOT_FOUND') return noUser(cmd, err.message);
    throw err;
  }
}

export const usersCmd: Command = {
  name: 'users',
  summary: 'add, list and change the users who sign in to the console (roles admin, operator, viewer)',
  usage: USERS_USAGE,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        role: { type: 'string' },
        'password-stdin': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
    });
    const [sub, name, ...extra] = positionals;
    const cmd = 'users';
    const audit = (db: Db, action: string, who: string, detail?: Record<string, unknown>) => recordAudit(db, { actor: actor(), action, object: `user:${who}`, detail });

    if (sub === 'list' && !name) {
      const users = await withStore(values.config, (db) => listUsers(db.kysely));
      if (values.json) out(JSON.stringify(users.map(({ id: _id, ...u }) => u), null, 2));
      else for (const u of users) out([u.name, u.role, u.disabled ? 'disabled' : 'enabled', u.createdAt].join('\t'));
      return 0;
    }
    if (!name || extra.length > (sub === 'set-role' ? 1 : 0)) return usage(cmd, USERS_USAGE);
    switch (sub) {
      case 'add': {
        if (!isRole(values.role)) return usage(cmd, USERS_USAGE, '--role must be admin, operator or viewer');
        const password = await newPassword(cmd, values['password-stdin']);
        if (password === undefined) return 64;
        return orUsage(cmd, () =>
          withStore(values.config, async (db, config) => {
            const u = await addUser(db, { name, role: values.role as Role, password }, config.http.signIn.scryptCost);
            await audit(db, 'user.create', u.name, { role: u.role });
            out(`added ${u.name} (${u.role})`);
            return 0;
          }),
        );
      }
      case 'set-role': {
        const role = extra[0];
        if (!isRole(role)) return usage(cmd, USERS_USAGE, 'the role must be admin, operator or viewer');
        return orUsage(cmd, () =>
          withStore(values.config, async (db, config) => {
            await updateUser(db, name, { role }, config.http.signIn.scryptCost);
            await audit(db, 'user.update', name, { role });
            out(`${name} is now ${role}`);
            return 0;
          }),
        );
      }
      case 'disable':
      case 'enable':
        return orUsage(cmd, () =>
          withStore(values.config, async (db, config) => {
            await updateUser(db, name, { disabled: sub === 'disable' }, config.http.signIn.scryptCost);
            await audit(db, 'user.update', name, { disabled: sub === 'disable' });
            out(`${name} ${sub}d`);
            return 0;
          }),
        );
      case 'passwd': {
        // Known before asking: no point typing a password for a name that is not there.
        const exists = await withStore(values.config, async (db) => !!(await getUserByName(db.kysely, name)));
        if (!exists) return noUser(cmd, `no user '${name}'`);
        const password = await newPassword(cmd, values['password-stdin']);
        if (password === undefined) return 64;
        return orUsage(cmd, () =>
          withStore(values.config, async (db, config) => {
            await updateUser(db, name, { password }, config.http.signIn.scryptCost);
            await audit(db, 'user.update', name, { password: 'changed' });
            out(`password of ${name} changed; their sessions ended`);
            return 0;
          }),
        );
      }
      case 'delete':
        return withStore(values.config, async (db) => {
          if (!(await deleteUser(db, name))) return noUser(cmd, `no user '${name}'`);
          await audit(db, 'user.delete', name);
          out(`deleted ${name}`);
          return 0;
        });
    }
    return usage(cmd, USERS_USAGE);
  },
};

export const tokensCmd: Command = {
  name: 'tokens',
  summary: 'make, list and revoke users\' API tokens (prt_…, read or write scope)',
  usage: TOKENS_USAGE,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        name: { type: 'string' },
        scope: { type: 'string', default: 'read' },
        user: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
    const [sub, arg, ...extra] = positionals;
    const cmd = 'tokens';
    if (extra.length) return usage(cmd, TOKENS_USAGE);
    if (sub === 'list' && !arg) {
      return withStore(values.config, async (db) => {
        let userId: string | undefined;
        if (values.user !== undefined) {
          const row = await getUserByName(db.kysely, values.user);
          if (!row) return noUser(cmd, `no user '${values.user}'`);
          userId = row.id;
        }
        const tokens = await listTokens(db.kysely, userId);
        if (values.json) out(JSON.stringify(tokens, null, 2));
        else for (const t of tokens) out([t.id, t.user, t.scope, t.revokedAt ? `revoked ${t.revokedAt}` : 'active', t.lastUsedAt ?? 'never used', t.name].join('\t'));
        return 0;
      });
    }
    if (sub === 'add' && arg) {
      if (!values.name) return usage(cmd, TOKENS_USAGE, '--name is required (what the token is for)');
      if (values.scope !== 'read' && values.scope !== 'write') return usage(cmd, TOKENS_USAGE, '--scope must be read or write');
      return orUsage(cmd, () =>
        withStore(values.config, async (db) => {
          const row = await getUserByName(db.kysely, arg);
          if (!row) return noUser(cmd, `no user '${arg}'`);
          const { token, info } = await addToken(db, toUser(row), { name: values.name!, scope: values.scope as TokenScope });
          await recordAudit(db, { actor: actor(), action: 'token.create', object: `token:${info.id}`, detail: { user: info.user, name: info.name, scope: info.scope } });
          process.stderr.write(`token ${info.id} for ${info.user} (${info.scope}); shown once, keep it now:\n`);
          out(token);
          return 0;
        }),
      );
    }
    if (sub === 'revoke' && arg) {
      return withStore(values.config, async (db) => {
        if (!(await revokeToken(db, arg))) return noUser(cmd, `no token ${arg}`);
        await recordAudit(db, { actor: actor(), action: 'token.revoke', object: `token:${arg}` });
        out(`revoked ${arg}`);
        return 0;
      });
    }
    return usage(cmd, TOKENS_USAGE);
  },
};
