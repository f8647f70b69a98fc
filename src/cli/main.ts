import { toStderrLine, toSysexit } from '../core/errors.js';
import { commands } from './commands/index.js';

function help(): string {
  const width = Math.max(...[...commands.keys()].map((n) => n.length));
  const rows = [...commands.values()].map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `usage: postroom COMMAND [OPTIONS]

Postroom: a self-hosted inbound email gateway. It receives mail (SMTP, MTA pipe, IMAP/POP3,
HTTP), keeps it durably, parses it, routes it and delivers it.

commands:
${rows.join('\n')}

'postroom COMMAND --help' shows a command's options. Every configuration option, its
default and what it does: docs/config.md (example: config/postroom.example.yaml).`;
}

/** Entry point of the postroom binary; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${help()}\n`);
    return name ? 0 : 64;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write('postroom 0.1.0\n');
    return 0;
  }
  const cmd = commands.get(name);
  if (!cmd) {
    process.stderr.write(`postroom: unknown command '${name}'\n\n${help()}\n`);
    return 64;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${cmd.usage}\n`);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    // node:util parseArgs refuses an unknown option, a missing value or a stray argument:
    // the caller's mistake, EX_USAGE like any other (sysexits.h), never a software error (70).
    if (isUsageError(err)) {
      process.stderr.write(`postroom ${name}: ${err.message}\n'postroom ${name} --help' shows its options.\n`);
      return 64;
    }
    process.stderr.write(`postroom ${name}: ${err instanceof Error && !('status' in err) ? err.message : toStderrLine(err)}\n`);
    return err instanceof Error && 'status' in err ? toSysexit(err) : 70;
  }
}

function isUsageError(err: unknown): err is Error {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}
