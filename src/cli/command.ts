/** A CLI command: one file under cli/commands, registered in cli/commands/index.ts. */
export interface Command {
  name: string;
  /** One line for `postroom --help`. */
  summary: string;
  /** Full usage text for `postroom NAME --help`. */
  usage: string;
  /** Run with the arguments after the command name; resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}
