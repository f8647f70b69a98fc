import { parseArgs } from 'node:util';
import { hashPassword } from '../../core/passwords.js';
import type { Command } from '../command.js';

export const hashPasswordCmd: Command = {
  name: 'hash-password',
  summary: 'print a scrypt hash for smtp.auth.users[].password',
  usage: `usage: postroom hash-password [PASSWORD]

Prints a scrypt hash of PASSWORD (or of the first line of standard input) to paste into
smtp.auth.users[].password. Prefer standard input: arguments show up in 'ps'. A PASSWORD
starting with '-' goes after '--'.`,
  async run(argv) {
    const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
    if (positionals.length > 1) {
      process.stderr.write(`${this.usage}\n`);
      return 64;
    }
    let pw = positionals[0];
    if (pw === undefined) {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      pw = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0];
    }
    if (!pw) {
      process.stderr.write('hash-password: empty password\n');
      return 64;
    }
    process.stdout.write(`${await hashPassword(pw)}\n`);
    return 0;
  },
};
